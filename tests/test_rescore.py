"""After a run deploys a model (or a rollback), the backlog is transcribed again by it in the background,
and the dashboard says how many unreviewed transcripts the new model would write differently."""
from __future__ import annotations

import time

from tests.conftest import run_in_process
from utils import database


def _settled(client, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while (progress := client.get("/api/suggestions/score").get_json())["state"] == "running":
        assert time.monotonic() < deadline, progress
        time.sleep(0.2)
    return progress


def test_a_deploy_scores_the_backlog_again(client, conn, cfg, trainable, fake_engine):
    # A model copied in by hand is not a deploy: nothing starts on its own.
    assert client.get("/api/suggestions/score").get_json()["state"] == "idle"
    fake_engine.wer = (0.5, 0.3)
    run = run_in_process(cfg)
    assert run["deployed"]
    assert client.get("/api/train/status").get_json()["state"] == "done"  # the dashboard's poll notices the deploy
    progress = _settled(client)
    assert progress["state"] == "done", progress
    unreviewed = len(trainable.unreviewed)
    assert progress["scored"] == unreviewed and 0 <= progress["differ"] <= unreviewed
    # The random test model hears nothing like "not yet reviewed": every transcript would change.
    assert progress["differ"] == unreviewed
    assert client.get("/api/suggestions/score").get_json()["state"] == "done"  # looked at again: no new run

    database.insert_item(conn, "one more", database.get_audio(conn, trainable.unreviewed[0]))
    assert client.post("/api/model/rollback", json={"version": "v0-original"}).status_code == 200
    progress = _settled(client)
    assert progress["scored"] == unreviewed + 1  # the model put back heard the whole backlog, the new item too

    def heard_by() -> set[str]:
        return {r[0] for r in conn.execute("SELECT DISTINCT model_fingerprint FROM s2s_app_suggestions")}

    both = heard_by()
    assert len(both) == 2  # the run's model and the one put back
    # Issue 31: one row per item per deployed model, never pruned. Now only the deployed one and the one before:
    # what a model deployed earlier still (a fingerprint no longer in use) heard goes at the next deploy.
    conn.execute("INSERT INTO s2s_app_suggestions(item_id, model_fingerprint, text) VALUES (?, 'gone-model', 'x')",
                 (trainable.unreviewed[0],))
    assert client.post("/api/model/rollback", json={"version": run["version"]}).status_code == 200
    _settled(client)
    assert heard_by() == both  # the same two folders (a version deployed again is the same model)
    # Issue 34: both swaps are in the history, newest first (a run records itself; these had no run).
    assert [(r["version"], r["previous"]) for r in client.get("/api/model/rollbacks").get_json()] == [
        (run["version"], "v0-original"), ("v0-original", run["version"])]


def test_it_can_be_turned_off(client, conn, cfg, trainable, fake_engine):
    cfg.training.rescore_after_deploy = False
    assert run_in_process(cfg)["deployed"]
    client.get("/api/train/status")
    progress = client.get("/api/suggestions/score").get_json()
    assert (progress["state"], progress["scored"]) == ("idle", 0)


def test_scoring_belongs_to_one_model_and_restarts_when_another_is_deployed(client, conn, cfg, trainable,
                                                                           fake_engine, monkeypatch):
    """Issue 34: started with the original model, scoring ran on through two training runs and then said
    "Transcribed 300 items." for a model no longer deployed."""
    from stt.models import store
    from stt.review import suggestions

    run = run_in_process(cfg)
    client.get("/api/train/status")
    _settled(client)
    database.insert_item(conn, "one more", database.get_audio(conn, trainable.unreviewed[0]))
    real = suggestions._transcribe_and_store
    rolled = []

    def a_rollback_meanwhile(*args):
        if not rolled:  # while the first clip is heard, the user rolls back
            rolled.append(client.post("/api/model/rollback", json={"version": store.ORIGINAL}).status_code)
        return real(*args)

    monkeypatch.setattr(suggestions, "_transcribe_and_store", a_rollback_meanwhile)
    assert client.post("/api/suggestions/score").status_code == 202
    progress = _settled(client)
    assert rolled == [200] and run["version"] != store.ORIGINAL
    # The job noticed after that clip and scored everything again with the model now deployed, saying which.
    assert progress["state"] == "done" and progress["version"] == store.ORIGINAL, progress
    assert f"with version {store.ORIGINAL}" in progress["message"]
    assert progress["scored"] == len(trainable.unreviewed) + 1


def test_train_stops_scoring_and_says_why(app, cfg, trainable, monkeypatch):
    import threading

    from stt.review import suggestions
    from training.src import api_suggest

    tiny_whisper_built = cfg.model.path.is_dir()
    assert tiny_whisper_built
    release = threading.Event()
    monkeypatch.setattr(suggestions, "_transcribe_and_store", lambda *args: release.wait(10))
    with app.app_context():
        job = api_suggest._job()
        assert job.start(cfg)
        deadline = time.monotonic() + 30
        while job.progress()["total"] == 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        api_suggest.stop_for_training()
        release.set()
        job.wait(10)
        progress = job.progress()
    assert progress["state"] == "cancelled" and progress["message"].startswith("Stopped for the training run")
