"""The trained flags always match the deployed model's lineage, whatever the order in which a rollback and an
undo reach a database the assistant holds (issue 32, item 2): real threads, a real second connection."""
from __future__ import annotations

import threading
import time

from stt.models import store
from tests.conftest import run_in_process
from tests.test_train_api import trained_ids
from utils import database


def test_a_rollback_and_an_undo_under_the_assistants_lock_leave_the_flags_of_the_deployed_model(
        app, conn, cfg, trainable, fake_engine):
    run = run_in_process(cfg)
    assert run["deployed"], run["message"]
    learned = trained_ids(conn)
    assert learned
    for target in (store.ORIGINAL, run["version"], store.ORIGINAL):
        batch = app.test_client().post("/api/bulk/apply", json={"find": "yet", "replace": "now", "all": True})
        batch_id = batch.get_json()["batch_id"]
        answers: dict[str, int] = {}

        def call(name: str, path: str, body: dict | None = None, answers: dict = answers) -> None:
            answers[name] = app.test_client().post(path, json=body).status_code

        assistant = database.connect(cfg.database.path)
        assistant.execute("BEGIN IMMEDIATE")
        rollback = threading.Thread(target=call, args=("rollback", "/api/model/rollback", {"version": target}))
        undo = threading.Thread(target=call, args=("undo", f"/api/bulk/{batch_id}/undo"))
        rollback.start()
        time.sleep(0.03)
        undo.start()
        time.sleep(2)
        assistant.execute("ROLLBACK")
        assistant.close()
        rollback.join(30)
        undo.join(30)
        assert answers == {"rollback": 200, "undo": 200}
        assert store.deployed_version(cfg.model.path) == target
        assert trained_ids(conn) == (set() if target == store.ORIGINAL else learned), target
