"""Training through the API with a tiny random Whisper: real worker process, real SQLite, real model store."""
from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from transformers import WhisperForConditionalGeneration

from stt.finetune import deploy_rule
from stt.models import store
from stt.models.model_format import detect_format
from stt.runs import jobs, worker
from tests import tiny_whisper
from tests.conftest import SENTENCES, clips_at, run_in_process
from utils import database, runs, schema


def wait_for(client, job_id: str, states=runs.FINISHED, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.get(f"/api/train/{job_id}").get_json()
        if run["state"] in states:
            return run
        time.sleep(0.3)
    raise AssertionError(f"run {job_id} did not reach {states}: {run}")


def trained_ids(conn) -> set[int]:
    return {r[0] for r in conn.execute("SELECT id FROM s2s_training_data WHERE is_trained = 1")}


@pytest.mark.slow  # a real worker process trains, deploys and rolls back
def test_a_run_end_to_end(client, conn, cfg, trainable):
    original = (cfg.model.path / "model.safetensors").read_bytes()
    response = client.post("/api/train")
    assert response.status_code == 202
    body = response.get_json()
    assert body["success"] is True and body["trained_count"] == len(trainable.train) == 5
    assert body["heldout_count"] == 3
    # One run at a time.
    second = client.post("/api/train")
    assert second.status_code == 409 and second.get_json()["error"] == "job_running"

    run = wait_for(client, body["job_id"])
    assert run["state"] == "done", run["message"]
    assert run["wer_before"] is not None and run["wer_after"] is not None
    assert run["items"] == 5 and run["heldout_items"] == 3
    # Where the click's time went, every phase from decoding the clips to the swap, in run order.
    assert list(run["result"]["phase_seconds"]) == [
        "preparing", "converting", "loading", "encoding", "training", "validation", "blend", "saving",
        "exporting", "measuring before", "measuring after", "deploying"]
    assert run["mode"] == ("full" if torch.cuda.is_available() else "adapt"), "'auto' is recorded as what ran"
    if run["deployed"]:
        # Exactly the training items are marked: not the held-out ones, not the unreviewed ones.
        assert trained_ids(conn) == set(trainable.train)
        assert (cfg.model.path / "model.safetensors").read_bytes() != original
    else:
        assert "Not deployed" in run["message"] and trained_ids(conn) == set()
        assert (cfg.model.path / "model.safetensors").read_bytes() == original
    WhisperForConditionalGeneration.from_pretrained(str(cfg.model.path))  # the deployed folder loads
    used = dict(conn.execute("SELECT item_id, role FROM s2s_app_train_items WHERE job_id = ?", (body["job_id"],)))
    assert {i for i, r in used.items() if r in ("train", "trained")} == set(trainable.train)
    assert {i for i, r in used.items() if r == "heldout"} == set(trainable.heldout)

    model = client.get("/api/model").get_json()
    assert model["format"] == "huggingface"
    names = [v["version"] for v in model["versions"]]
    assert store.ORIGINAL in names and run["version"] in names
    assert client.get("/api/train/runs").get_json()[0]["job_id"] == body["job_id"]
    assert client.get("/api/train/status").get_json()["job_id"] == body["job_id"]

    # Roll back to the original: the deployed files are the user's model again.
    rolled = client.post("/api/model/rollback", json={"version": store.ORIGINAL})
    assert rolled.status_code == 200
    assert (cfg.model.path / "model.safetensors").read_bytes() == original
    assert client.get("/api/model").get_json()["version"] == store.ORIGINAL
    assert trained_ids(conn) == set()  # the original never learned them: pending again
    assert client.post("/api/model/rollback", json={"version": "v99-nope"}).status_code == 404


def test_nothing_pending_and_no_model_are_clear_400s(client, cfg, conn, clips):
    response = client.post("/api/train")
    assert response.status_code == 400 and response.get_json()["error"] == "model_missing"
    tiny_whisper.build(cfg.model.path)
    response = client.post("/api/train")
    assert response.status_code == 400 and response.get_json()["error"] == "nothing_pending"
    assert "no item is reviewed yet" in response.get_json()["message"]
    # Three reviewed items are all held out (heldout_min=3): still nothing to train on, and it says why.
    for clip in clips[:3]:
        database.insert_item(conn, "reviewed", clip, is_reviewed=1)
    refused = client.post("/api/train").get_json()
    assert refused["error"] == "nothing_pending"
    assert "of the 3 reviewed items, 3 held out to measure runs" in refused["message"]
    assert client.get("/api/data/stats").get_json()["pending_training"] == 0


@pytest.mark.parametrize("ran, ended", [(8, "every configured epoch ran, and the loss on the held-out and check "
                                             "speech was lowest after that one"),
                                         (5, "no longer fell after it, so the run stopped there")])
def test_the_verdict_says_whether_the_stop_or_the_last_epoch_ended_the_run(cfg, trainable, fake_engine, ran, ended):
    """Issue 34: "Kept epoch 7 of the 8 trained: after it, the loss ... no longer fell (the stop)" when all 8 ran."""
    fake_engine.result = {"max_epochs": 8, "epochs_run": ran, "best_epoch": ran - 1}
    message = run_in_process(cfg)["message"]
    assert f"Kept epoch {ran - 1} of the {ran} trained: " in message and ended in message


def test_a_language_an_english_only_model_cannot_write_is_a_clear_400(client, cfg, trainable):
    cfg.assistant.language = "de"
    response = client.post("/api/train")
    assert response.status_code == 400 and response.get_json()["error"] == "language_mismatch"
    assert "English-only" in response.get_json()["message"]


def test_a_run_whose_export_the_assistant_cannot_load_does_not_deploy(conn, cfg, trainable, monkeypatch):
    """The new model is measured on the folder the swap would put in place: one that faster-whisper cannot
    load is never deployed, and the run says so."""
    from stt.runs import measuring
    from stt.runs import worker as worker_module

    shutil.rmtree(cfg.model.path)
    build_ct2(cfg.model.path)
    original = (cfg.model.path / "model.bin").read_bytes()
    # The real measuring, of a real export that comes out broken.
    monkeypatch.setattr("stt.finetune.engine.fine_tune", _copying_fine_tune)
    export = worker_module.in_format_of

    def broken_export(deployed, trained, scratch):
        out = export(deployed, trained, scratch)
        (out / "model.bin").write_bytes((out / "model.bin").read_bytes()[:1000])
        return out

    monkeypatch.setattr(worker_module, "in_format_of", broken_export)
    monkeypatch.setattr(measuring, "builtin_checks", lambda: {})
    run = run_in_process(cfg)
    assert run["state"] == "failed" and not run["deployed"], run["message"]
    assert "exported as the assistant loads it, cannot be loaded" in run["message"]
    assert "so it was not deployed" in run["message"] and "The deployed model was not changed" in run["message"]
    assert (cfg.model.path / "model.bin").read_bytes() == original
    assert store.deployed_version(cfg.model.path) is None
    assert trained_ids(conn) == set()


def _copying_fine_tune(model_dir, out_dir, train, watched, cfg, progress, should_stop, **extra):
    """A "training" that saves the model it was given (the tiny random one), for runs whose point is after it."""
    import stt.finetune.engine as engine

    shutil.copytree(model_dir, out_dir)
    return engine.EngineResult(mode="decoder", device="cpu", max_epochs=1, steps=1, train_items=len(train),
                               train_loss=0.4, train_seconds=0.1)


def test_bad_mode_is_400(client, trainable):
    response = client.post("/api/train", json={"mode": "turbo"})
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_field"


@pytest.mark.slow  # a real worker process, killed
def test_killing_the_worker_leaves_everything_consistent(client, conn, cfg, trainable):
    cfg.training.epochs = 200  # long enough to be killed mid-way
    original = (cfg.model.path / "model.safetensors").read_bytes()
    job_id = client.post("/api/train").get_json()["job_id"]
    wait_for(client, job_id, states=("training",), timeout=120)
    jobs._children[job_id].kill()  # SIGKILL / TerminateProcess: no chance to clean up
    jobs._children[job_id].wait()
    run = client.get(f"/api/train/{job_id}").get_json()
    assert run["state"] == "failed" and "stopped unexpectedly" in run["message"]
    assert trained_ids(conn) == set()
    assert (cfg.model.path / "model.safetensors").read_bytes() == original
    WhisperForConditionalGeneration.from_pretrained(str(cfg.model.path))
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # A new run can start right away.
    assert client.post("/api/train").status_code == 202


@pytest.mark.slow  # a real worker process, cancelled
def test_cancel_stops_the_run_and_changes_nothing(client, conn, cfg, trainable):
    cfg.training.epochs = 200
    original = (cfg.model.path / "model.safetensors").read_bytes()
    job_id = client.post("/api/train").get_json()["job_id"]
    wait_for(client, job_id, states=("training",), timeout=120)
    assert client.post(f"/api/train/{job_id}/cancel").status_code == 202
    run = wait_for(client, job_id, timeout=60)
    assert run["state"] == "cancelled"
    assert trained_ids(conn) == set()
    assert (cfg.model.path / "model.safetensors").read_bytes() == original
    assert client.post(f"/api/train/{job_id}/cancel").status_code == 409
    assert client.post("/api/train/nope/cancel").status_code == 404


def test_a_run_whose_heartbeat_stops_is_failed_after_a_restart(conn):
    schema.migrate(conn)
    job_id = runs.create(conn, "decoder", 5, 3)
    runs.update(conn, job_id, state="training")
    conn.execute("UPDATE s2s_app_train_runs SET heartbeat_at = '2000-01-01T00:00:00+00:00' WHERE job_id = ?", (job_id,))
    assert runs.reap(conn) == [job_id]
    run = runs.get(conn, job_id)
    assert run["state"] == "failed" and "stopped responding" in run["message"]


def test_only_items_unchanged_during_the_run_are_marked(conn, speech):
    schema.migrate(conn)
    ids = [database.insert_item(conn, f"text {i}", speech["hello"], is_reviewed=1) for i in range(4)]
    job_id = runs.create(conn, "decoder", 3, 1)
    runs.record_items(conn, job_id, [(ids[0], "train", "text 0"), (ids[1], "train", "text 1"),
                                     (ids[2], "train", "text 2"), (ids[3], "heldout", "text 3")])
    database.update_item(conn, ids[1], transcript="corrected while training")
    database.update_item(conn, ids[2], is_reviewed=False)
    assert runs.mark_trained(conn, job_id) == 1
    assert trained_ids(conn) == {ids[0]}


@pytest.mark.parametrize("before, after, reg_before, reg_after, tolerance, deployed", [
    (0.5, 0.3, None, None, 0.0, True),
    (0.5, 0.5, None, None, 0.0, True),
    (0.3, 0.5, None, None, 0.0, False),
    (0.3, 0.3, None, None, 0.05, True),
    (0.5, 0.2, 0.1, 0.2, 0.0, False),  # learned the domain, forgot ordinary speech on every clip: refused
    (None, None, None, None, 0.0, True),
])
def test_deploy_verdict(before, after, reg_before, reg_after, tolerance, deployed):
    errors = {}
    if before is not None:
        errors["heldout"] = {"before": clips_at(before), "after": clips_at(after)}
    if reg_before is not None:
        errors["regression"] = {"before": clips_at(reg_before), "after": clips_at(reg_after)}
    accepted, message = deploy_rule.verdict(errors, tolerance, 0.95)
    assert accepted is deployed
    assert ("Not deployed" in message) is (not deployed)


def test_one_changed_word_among_a_few_does_not_veto_a_much_better_model():
    """Issue 9's case: held-out 47.6% -> 9.5%, regression 1 of 6 words worse on one clip of three."""
    errors = {"heldout": {"before": [(2, 4)] * 5, "after": [(0, 4)] * 4 + [(2, 4)]},
              "regression": {"before": [(1, 2), (0, 2), (0, 2)], "after": [(2, 2), (0, 2), (0, 2)]}}
    accepted, message = deploy_rule.verdict(errors, 0.0, 0.95)
    assert accepted, message
    assert "within chance" in message and "regression" in message
    # The same rise on every clip of a larger set is no chance.
    errors["regression"] = {"before": [(1, 6)] * 12, "after": [(2, 6)] * 12}
    accepted, message = deploy_rule.verdict(errors, 0.0, 0.95)
    assert not accepted and "regression WER got worse" in message and "regression checks" in message


def test_runs_rehearse_the_built_in_speech_and_gate_on_it_until_there_are_enough_own_checks(
        conn, cfg, trainable, fake_engine):
    from stt.finetune import ordinary

    cfg.training.builtin_speech = True
    run_in_process(cfg)
    assert len(fake_engine.seen.rehearsal) == ordinary.REHEARSAL_MIN  # 5 new items: the minimum
    assert fake_engine.seen.ordinary == len(ordinary.load("gate"))
    cfg.training.builtin_speech = False
    database.update_item(conn, trainable.train[0], transcript="edited, so pending again")
    run_in_process(cfg)
    # Off: two of the first run's items are rehearsed (two per new item), nothing built-in.
    assert len(fake_engine.seen.rehearsal) == 2 and set(fake_engine.seen.rehearsal) <= set(trainable.train[1:])
    assert fake_engine.seen.ordinary == 0


def test_the_run_says_which_epoch_and_how_much_of_its_change_it_kept(conn, cfg, trainable, fake_engine):
    fake_engine.result = {"epochs_run": 6, "best_epoch": 4, "blend": 0.7}
    message = run_in_process(cfg)["message"]
    assert "Kept epoch 4 of the 6 trained" in message and "Kept 70% of the change" in message
    fake_engine.result = {"epochs_run": 8, "best_epoch": 8, "blend": 1.0}
    database.update_item(conn, trainable.train[0], transcript="edited, so pending again")
    message = run_in_process(cfg)["message"]
    assert "Kept epoch" not in message and "of the change" not in message


def test_command_line_train_list_evaluate_and_rollback(cfg, conn, trainable, capsys, monkeypatch, fake_engine):
    """The terminal commands on the same job code (the real engine's run is test_a_run_end_to_end's)."""
    from main import main

    args = ["--db", str(cfg.database.path), "--model", str(cfg.model.path)]
    monkeypatch.setenv("S2S_TRAINING_EPOCHS", "1")  # environment overrides reach the command line too
    code = main(["train", *args])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Training started on 5 items" in out and "training" in out and "Deployed" in out
    assert "\ntime: preparing " in out  # where the time went, at the end (phases under 0.05 s left out)
    assert fake_engine.seen.epochs == 1
    assert main(["model", "list", *args]) == 0
    listing = capsys.readouterr().out
    assert store.ORIGINAL in listing and "format: huggingface" in listing
    assert main(["evaluate", *args]) == 0
    assert "held-out WER" in capsys.readouterr().out
    assert main(["model", "rollback", store.ORIGINAL, *args]) == 0
    assert store.deployed_version(cfg.model.path) == store.ORIGINAL
    assert main(["model", "rollback", "v42-missing", *args]) == 1
    err = capsys.readouterr().err  # names the kept ones, so the user can pick one
    assert "the kept ones are v1-" in err and f", {store.ORIGINAL}." in err
    # With no model in the folder, the listing says so and what to do, in one line.
    assert main(["model", "list", "--db", str(cfg.database.path), "--model", str(cfg.model.path.parent / "none")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no model at" in err and "model download" in err


# ---- the job's plumbing around a stand-in engine (in this process, so the engine can be replaced) ----


def test_a_worse_model_is_kept_as_a_rejected_version(client, conn, cfg, trainable, fake_engine):
    original = (cfg.model.path / "model.safetensors").read_bytes()
    fake_engine.wer = (0.2, 0.6)
    run = run_in_process(cfg)
    assert run["state"] == "done" and not run["deployed"]
    assert run["message"].startswith("Not deployed: held-out WER got worse (20.0% → 60.0% over 100 words")
    assert trained_ids(conn) == set()
    assert (cfg.model.path / "model.safetensors").read_bytes() == original
    versions = {v["version"]: v for v in client.get("/api/model").get_json()["versions"]}
    assert versions[run["version"]]["accepted"] is False and not versions[run["version"]]["deployed"]
    assert versions[store.ORIGINAL]["deployed"]
    # Deployed by hand all the same: the flags the assistant reads and the counts follow the model, not the verdict.
    assert client.post("/api/model/rollback", json={"version": run["version"]}).status_code == 200
    assert trained_ids(conn) == set(trainable.train)
    assert client.get("/api/data/stats").get_json()["pending_training"] == 0
    client.post("/api/model/rollback", json={"version": store.ORIGINAL})
    assert trained_ids(conn) == set()


def test_items_edited_during_the_run_stay_pending(client, conn, cfg, trainable, fake_engine):
    edited, unreviewed, new_audio = trainable.train[:3]

    def reviewer_and_assistant_edit() -> None:
        database.update_item(conn, edited, transcript="corrected while it trained")
        database.update_item(conn, unreviewed, is_reviewed=False)
        # The assistant replaces a clip's audio, its transcript unchanged: the model learned the old audio.
        old = conn.execute("SELECT audio_blob FROM s2s_training_data WHERE id = ?", (new_audio,)).fetchone()[0]
        conn.execute("UPDATE s2s_training_data SET audio_blob = ? WHERE id = ?", (old + bytes(320), new_audio))

    fake_engine.during = reviewer_and_assistant_edit
    run = run_in_process(cfg)
    assert run["state"] == "done" and run["deployed"], run["message"]
    # Each with its own reason: the edited ones are pending again, the un-reviewed one waits for review.
    assert "2 item(s) were edited during training (transcript or audio) and stay pending" in run["message"]
    assert "1 item(s) were marked unreviewed during training and wait for review" in run["message"]
    assert trained_ids(conn) == set(trainable.train) - {edited, unreviewed, new_audio}
    assert fake_engine.seen.heldout == trainable.heldout and fake_engine.seen.train == trainable.train
    # A rollback and back follows the same rule: the model never learned the new audio.
    assert client.post("/api/model/rollback", json={"version": store.ORIGINAL}).status_code == 200
    assert client.post("/api/model/rollback", json={"version": run["version"]}).status_code == 200
    assert new_audio not in trained_ids(conn)


def test_rollback_makes_the_trained_flags_match_the_model(client, conn, cfg, trainable, fake_engine, clips):
    elsewhere = database.insert_item(conn, "trained before this app", clips[0], is_reviewed=1, is_trained=1)
    first = run_in_process(cfg)
    learned_first = trained_ids(conn) - {elsewhere}
    for text, clip in zip(SENTENCES[:4], clips):
        database.insert_item(conn, text + " Again.", clip, is_reviewed=1)
    second = run_in_process(cfg)
    learned_second = trained_ids(conn) - learned_first - {elsewhere}
    assert first["deployed"] and second["deployed"] and learned_first and learned_second

    assert client.post("/api/model/rollback", json={"version": first["version"]}).status_code == 200
    assert trained_ids(conn) == learned_first | {elsewhere}
    client.post("/api/model/rollback", json={"version": second["version"]})
    assert trained_ids(conn) == learned_first | learned_second | {elsewhere}
    client.post("/api/model/rollback", json={"version": store.ORIGINAL})
    assert trained_ids(conn) == {elsewhere}


def test_the_regression_folder_is_measured_and_must_exist(tmp_path, conn, cfg, trainable, fake_engine, clips):
    folder = tmp_path / "regression"
    folder.mkdir()
    (folder / "weather.wav").write_bytes(clips[6])
    (folder / "weather.txt").write_text("What is the weather today?\n", encoding="utf-8")
    (folder / "no-transcript.wav").write_bytes(clips[5])  # not a pair: ignored
    cfg.training.regression_dir = str(tmp_path / "typo")
    run = run_in_process(cfg)
    assert run["state"] == "failed" and "typo" in run["message"] and "does not exist" in run["message"]
    cfg.training.regression_dir = str(folder)
    assert run_in_process(cfg)["state"] == "done"
    assert fake_engine.seen.regression == ["What is the weather today?"]


def test_a_half_written_model_fails_the_run_and_is_left_alone(conn, cfg, trainable):
    weights = cfg.model.path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100_000])
    truncated = weights.read_bytes()
    run = run_in_process(cfg)
    assert run["state"] == "failed"
    assert run["message"].startswith(f"Training failed: the model at {cfg.model.path} cannot be loaded")
    assert "copy it again" in run["message"] and "The deployed model was not changed." in run["message"]
    assert weights.read_bytes() == truncated and trained_ids(conn) == set()


def test_items_whose_audio_does_not_decode_are_left_out_and_stop_counting(conn, cfg, trainable, fake_engine):
    """Never opened in the editor, so nobody knew: the run finds out, says so, and they stop being pending."""
    junk = [database.insert_item(conn, f"unplayable {i}", b"RIFF\x00\x00\x00\x00WAVEjunk", is_reviewed=1)
            for i in range(2)]
    started = jobs.start_record(cfg)
    run = worker.run(started["job_id"], cfg)
    assert run["state"] == "done"
    left_out = [i for i in junk if i in run["result"]["skipped_items"]]
    assert left_out and f"{len(left_out)} item(s) left out" in run["message"]
    assert (not set(junk) & (set(fake_engine.seen.train) | set(fake_engine.seen.heldout))
            and not set(junk) & trained_ids(conn))
    after = jobs.plan(conn, cfg)
    assert not set(junk) & (set(after.train) | set(after.heldout))


def test_a_failure_after_the_swap_says_the_model_was_deployed(conn, cfg, trainable, fake_engine, monkeypatch):
    """The assistant holds the lock past the timeout just as the run records itself: the model is live."""
    def locked(*_args):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(runs, "mark_trained", locked)
    run = run_in_process(cfg)
    assert run["state"] == "failed" and run["deployed"] and run["version"] == store.deployed_version(cfg.model.path)
    assert "after deploying its model" in run["message"] and "stay pending" in run["message"]
    assert trained_ids(conn) == set()


def test_audio_stored_as_text_is_read_not_a_crash(conn, cfg, trainable, fake_engine, speech):
    item_id = database.insert_item(conn, "stored as text", speech["hello"], is_reviewed=1)
    conn.execute("UPDATE s2s_training_data SET audio_blob = CAST(audio_blob AS TEXT) WHERE id = ?", (item_id,))
    assert conn.execute("SELECT typeof(audio_blob) FROM s2s_training_data WHERE id = ?",
                        (item_id,)).fetchone()[0] == "text"
    run = run_in_process(cfg)
    assert run["state"] == "done", run["message"]


def test_flagged_items_are_a_regression_check_never_trained(client, conn, cfg, trainable, fake_engine):
    flagged = trainable.train[0]
    client.put(f"/api/data/{flagged}", json={"regression": True})
    started = jobs.start_record(cfg)
    assert started["trained_count"] == len(trainable.train) - 1
    run = worker.run(started["job_id"], cfg)
    assert run["state"] == "done" and run["deployed"]
    text = conn.execute("SELECT transcript FROM s2s_training_data WHERE id = ?", (flagged,)).fetchone()[0]
    assert fake_engine.seen.regression == [text]
    assert flagged not in fake_engine.seen.train and flagged not in fake_engine.seen.heldout
    assert trained_ids(conn) == set(trainable.train) - {flagged}


def build_ct2(path: Path) -> None:
    """The tiny model as a float16 CTranslate2 folder, as faster-whisper users have it. A fresh
    model's all-ones layer norms and zero biases are stored once, as aliases, so the import
    has to follow them."""
    from stt.models.ct2_export import export_ct2

    export_ct2(tiny_whisper.build(path.with_name("hf-source")), path, "float16")


def test_a_ctranslate2_model_is_trained_as_hf_and_deployed_as_ctranslate2(client, conn, cfg, trainable,
                                                                           fake_engine):
    from stt.models.ct2_export import ct2_quantization

    shutil.rmtree(cfg.model.path)
    build_ct2(cfg.model.path)
    original = (cfg.model.path / "model.bin").read_bytes()
    run = run_in_process(cfg)
    assert run["state"] == "done" and run["deployed"], run["message"]
    assert fake_engine.seen.format == "huggingface"  # trained on the imported model
    assert detect_format(cfg.model.path) == "ctranslate2" and ct2_quantization(cfg.model.path) == "float16"
    assert store.deployed_version(cfg.model.path) == run["version"]
    assert client.get("/api/model").get_json()["format"] == "ctranslate2"
    assert not list(cfg.model.path.parent.glob("*.work-*"))  # the import/export scratch space is gone
    jobs.rollback(cfg, store.ORIGINAL)
    assert (cfg.model.path / "model.bin").read_bytes() == original


def test_a_worker_that_ignores_cancel_is_ended(client, cfg, trainable, monkeypatch):
    job_id = jobs.start_record(cfg)["job_id"]
    stuck = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    monkeypatch.setitem(jobs._children, job_id, stuck)
    monkeypatch.setattr(jobs, "CANCEL_GRACE_S", 0)
    assert client.post(f"/api/train/{job_id}/cancel").status_code == 202
    time.sleep(1.1)  # the request time has a resolution of one second
    run = client.get("/api/train/status").get_json()
    assert run["state"] == "cancelled" and "was ended" in run["message"]
    assert stuck.poll() is not None


def test_a_run_that_died_after_deploying_says_so(conn, cfg, trainable, fake_engine):
    done = run_in_process(cfg)
    job_id = runs.create(conn, "decoder", 5, 3)
    runs.update(conn, job_id, state="saving", version=done["version"])  # as if it died right after its swap
    conn.execute("UPDATE s2s_app_train_runs SET heartbeat_at = '2000-01-01T00:00:00+00:00' WHERE job_id = ?",
                 (job_id,))
    jobs.reap(conn, cfg)
    assert "had already been deployed" in runs.get(conn, job_id)["message"]


def test_app_start_fails_dead_runs_and_repairs_a_half_done_swap(cfg, conn, trainable):
    from training.src.app import create_app

    original = (cfg.model.path / "model.safetensors").read_bytes()
    job_id = runs.create(conn, "decoder", 5, 3)
    conn.execute("UPDATE s2s_app_train_runs SET state = 'saving', heartbeat_at = '2000-01-01T00:00:00+00:00'")
    cfg.model.path.rename(cfg.model.path.with_name("model.previous"))  # killed between the two renames
    jobs.work_dir(cfg, job_id).mkdir()
    create_app(cfg)
    assert runs.get(conn, job_id)["state"] == "failed"
    assert (cfg.model.path / "model.safetensors").read_bytes() == original
    assert not jobs.work_dir(cfg, job_id).exists()


def test_the_web_process_never_imports_torch(cfg):
    code = ("import sys; from training.src.app import create_app; from utils.config import load_config; "
            "app = create_app(load_config(environ={}, "
            f"overrides={{'database': {{'path': {str(cfg.database.path)!r}}}, "
            f"'model': {{'path': {str(cfg.model.path)!r}}}}})); "
            "app.test_client().get('/api/train/status'); app.test_client().get('/api/model'); "
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=jobs.PROJECT_ROOT,
                         check=True)
    assert out.stdout.split() == ["False", "False"]


def test_a_model_folder_nothing_can_be_written_beside_is_refused_before_the_run(client, cfg):
    tiny_whisper.build(cfg.model.path)
    parent = cfg.model.path.parent
    # Tests run as root, for whom file modes do not apply; the immutable attribute does.
    if subprocess.run(["chattr", "+i", str(parent)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not permitted here, so no folder can be made read-only for root")
    try:
        response = client.post("/api/train")
        listing = sorted(p.name for p in parent.iterdir())
    finally:
        subprocess.run(["chattr", "-i", str(parent)], check=True)
    body = response.get_json()
    assert response.status_code == 409 and body["error"] == "model_read_only"
    assert str(parent) in body["message"] and "writable" in body["message"]
    assert not [name for name in listing if ".work-" in name or ".probe-" in name]
    assert client.get("/api/train/status").get_json()["state"] != "queued"  # no run was recorded
