"""Training through the API with a tiny random Whisper: real worker process, real SQLite, real model store."""
from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from transformers import WhisperForConditionalGeneration

from stt import jobs, runs, store
from tests import tiny_whisper
from tests.speech import espeak_16k_wav
from utils import database

SENTENCES = ["Turn on the Kwintara lamp.", "Ask Zorblax to vacuum.", "Dim the Velmora heater.",
             "Play music on the Orvane speaker.", "Lock the front door.", "Set a timer for ten minutes.",
             "What is the weather today?", "Call Ysolde after lunch."]


@pytest.fixture(scope="module")
def clips() -> list[bytes]:
    return [espeak_16k_wav(s) for s in SENTENCES]


@pytest.fixture
def trainable(cfg, conn, clips):
    """A tiny model at the configured path, 8 reviewed items (3 held out) and 2 unreviewed ones."""
    tiny_whisper.build(cfg.model.path)
    cfg.training.epochs = 2
    cfg.training.batch_size = 4
    reviewed = [database.insert_item(conn, text, clip, is_reviewed=1) for text, clip in zip(SENTENCES, clips)]
    unreviewed = [database.insert_item(conn, "not yet reviewed", clips[0]) for _ in range(2)]
    heldout = database.heldout_ids(conn, cfg.training.heldout_fraction, cfg.training.heldout_min)
    return SimpleNamespace(reviewed=reviewed, unreviewed=unreviewed, heldout=heldout,
                           train=[i for i in reviewed if i not in heldout])


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
    assert run["items"] == 5 and run["heldout_items"] == 3 and run["mode"] == "auto"
    if run["deployed"]:
        # Exactly the training items are marked: not the held-out ones, not the unreviewed ones.
        assert trained_ids(conn) == set(trainable.train)
        assert (cfg.model.path / "model.safetensors").read_bytes() != original
    else:
        assert "Not deployed" in run["message"] and trained_ids(conn) == set()
        assert (cfg.model.path / "model.safetensors").read_bytes() == original
    WhisperForConditionalGeneration.from_pretrained(str(cfg.model.path))  # the deployed folder loads
    used = dict(conn.execute("SELECT item_id, role FROM s2s_app_train_items WHERE job_id = ?", (body["job_id"],)))
    assert {i for i, r in used.items() if r == "train"} == set(trainable.train)
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
    assert client.post("/api/model/rollback", json={"version": "v99-nope"}).status_code == 404


def test_nothing_pending_and_no_model_are_clear_400s(client, cfg, conn, clips):
    response = client.post("/api/train")
    assert response.status_code == 400 and response.get_json()["error"] == "model_missing"
    tiny_whisper.build(cfg.model.path)
    response = client.post("/api/train")
    assert response.status_code == 400 and response.get_json()["error"] == "nothing_pending"
    # Three reviewed items are all held out (heldout_min=3): still nothing to train on.
    for clip in clips[:3]:
        database.insert_item(conn, "reviewed", clip, is_reviewed=1)
    assert client.post("/api/train").get_json()["error"] == "nothing_pending"
    assert client.get("/api/data/stats").get_json()["pending_training"] == 0


def test_bad_mode_is_400(client, trainable):
    response = client.post("/api/train", json={"mode": "turbo"})
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_field"


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
    runs.init_tables(conn)
    job_id = runs.create(conn, "decoder", 5, 3)
    runs.update(conn, job_id, state="training")
    conn.execute("UPDATE s2s_app_train_runs SET heartbeat_at = '2000-01-01T00:00:00+00:00' WHERE job_id = ?", (job_id,))
    assert runs.reap(conn) == [job_id]
    run = runs.get(conn, job_id)
    assert run["state"] == "failed" and "stopped responding" in run["message"]


def test_only_items_unchanged_during_the_run_are_marked(conn, speech):
    runs.init_tables(conn)
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
    (0.3, 0.32, None, None, 0.05, True),
    (0.5, 0.2, 0.10, 0.15, 0.0, False),  # learned the domain, forgot ordinary speech: refused
    (None, None, None, None, 0.0, True),
])
def test_deploy_verdict(before, after, reg_before, reg_after, tolerance, deployed):
    result = SimpleNamespace(wer_before=before, wer_after=after, regression_wer_before=reg_before,
                             regression_wer_after=reg_after)
    accepted, message = jobs.verdict(result, tolerance)
    assert accepted is deployed
    assert ("Not deployed" in message) is (not deployed)


def test_store_repairs_an_interrupted_swap(tmp_path: Path):
    model = tmp_path / "model"
    (tmp_path / "model.previous").mkdir()
    (tmp_path / "model.previous" / "model.bin").write_text("the deployed model")
    (tmp_path / "model.incoming").mkdir()  # a half-copied new version
    store.repair(model)
    assert (model / "model.bin").read_text() == "the deployed model"
    assert not (tmp_path / "model.previous").exists() and not (tmp_path / "model.incoming").exists()


def test_store_keeps_versions_and_prunes(tmp_path: Path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights").write_text("original")
    names = []
    for i in range(4):
        candidate = tmp_path / f"c{i}"
        candidate.mkdir()
        (candidate / "weights").write_text(f"trained {i}")
        names.append(store.add_version(model, candidate, {"job_id": str(i), "accepted": True}))
        store.deploy(model, names[-1])
    store.prune(model, keep=2)
    kept = [v["version"] for v in store.list_versions(model)]
    assert store.ORIGINAL in kept and names[-1] in kept and names[0] not in kept
    assert (model / "weights").read_text() == "trained 3"
    store.deploy(model, store.ORIGINAL)
    assert (model / "weights").read_text() == "original"


def test_command_line_train_list_evaluate_and_rollback(cfg, conn, trainable, capsys, monkeypatch):
    from main import main

    args = ["--db", str(cfg.database.path), "--model", str(cfg.model.path)]
    monkeypatch.setenv("S2S_TRAINING_EPOCHS", "1")  # environment overrides reach the command line too
    code = main(["train", *args])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Training started on 5 items" in out and "training" in out and ("Deployed" in out or "Not deployed" in out)
    assert main(["model", "list", *args]) == 0
    listing = capsys.readouterr().out
    assert store.ORIGINAL in listing and "format: huggingface" in listing
    assert main(["evaluate", *args]) == 0
    assert "held-out WER" in capsys.readouterr().out
    assert main(["model", "rollback", store.ORIGINAL, *args]) == 0
    assert store.deployed_version(cfg.model.path) == store.ORIGINAL
    assert main(["model", "rollback", "v42-missing", *args]) == 1
