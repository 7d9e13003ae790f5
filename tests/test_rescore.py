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


def test_it_can_be_turned_off(client, conn, cfg, trainable, fake_engine):
    cfg.training.rescore_after_deploy = False
    assert run_in_process(cfg)["deployed"]
    client.get("/api/train/status")
    progress = client.get("/api/suggestions/score").get_json()
    assert (progress["state"], progress["scored"]) == ("idle", 0)
