"""A live worker is never declared dead, even while the assistant holds the database lock (issue 32, item 1):
real worker processes that no server started, a real second connection holding BEGIN IMMEDIATE."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from stt.runs import jobs, liveness
from tests.test_train_api import wait_for
from utils import database, runs

OLD_BEAT = "2000-01-01T00:00:00+00:00"


def _lock_holder(cfg) -> subprocess.Popen:
    """A process holding the model's worker lock, as a worker started from a terminal does; it says when it has it."""
    code = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from stt.runs import liveness
        lock = liveness.hold(Path({str(cfg.model.path)!r}))
        print("held", flush=True)
        time.sleep(120)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=jobs.PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_run_whose_worker_holds_the_lock_is_alive_however_old_its_beat(client, conn, cfg, trainable):
    job_id = jobs.start_record(cfg)["job_id"]
    conn.execute("UPDATE s2s_app_train_runs SET state = 'training', heartbeat_at = ? WHERE job_id = ?",
                 (OLD_BEAT, job_id))
    holder = _lock_holder(cfg)
    try:
        assert liveness.worker_alive(cfg.model.path) is True
        assert client.get("/api/train/status").get_json()["state"] == "training"
        refused = client.post("/api/train")
        assert refused.status_code == 409 and refused.get_json()["error"] == "job_running"
    finally:
        holder.kill()
        holder.wait()
    assert liveness.worker_alive(cfg.model.path) is False
    run = client.get(f"/api/train/{job_id}").get_json()
    assert run["state"] == "failed" and "stopped responding" in run["message"]


def test_train_is_refused_while_a_worker_of_the_model_lives_without_an_active_run(client, cfg, trainable, monkeypatch):
    """A worker from a previous server whose run record says it ended (or that is still tidying up)."""
    monkeypatch.setattr(jobs, "FINISHING_GRACE_S", 0.5)
    holder = _lock_holder(cfg)
    try:
        refused = client.post("/api/train")
        assert refused.status_code == 409 and "still running" in refused.get_json()["message"]
    finally:
        holder.kill()
        holder.wait()
    assert client.post("/api/train").status_code == 202


def test_a_second_worker_of_the_same_model_does_not_run(conn, cfg, trainable):
    job_id = jobs.start_record(cfg)["job_id"]
    holder = _lock_holder(cfg)
    try:
        from stt.runs import worker

        run = worker.run(job_id, cfg)
    finally:
        holder.kill()
        holder.wait()
    assert run["state"] == "failed" and "still going" in run["message"] and "did not start" in run["message"]


def test_the_reaper_writes_a_failure_only_onto_the_state_it_saw(conn, cfg, trainable):
    """The worker beats between the reaper's look and its write (the write waited on the assistant's lock)."""
    job_id = jobs.start_record(cfg)["job_id"]
    conn.execute("UPDATE s2s_app_train_runs SET state = 'training', heartbeat_at = ? WHERE job_id = ?",
                 (OLD_BEAT, job_id))
    worker_conn = database.connect(cfg.database.path)

    class BeatsMeanwhile:
        def execute(self, sql, params=()):
            if sql.startswith("UPDATE"):
                runs.update(worker_conn, job_id)
            return conn.execute(sql, params)

    assert runs.reap(BeatsMeanwhile()) == []
    worker_conn.close()
    assert runs.get(conn, job_id)["state"] == "training"


@pytest.mark.slow  # a real worker trains while the assistant holds the write lock
def test_a_live_worker_outlasts_the_assistants_lock_and_no_second_run_starts(client, conn, cfg, trainable,
                                                                            monkeypatch):
    monkeypatch.setattr(runs, "STALE_AFTER_S", 1)  # the heartbeat limit, passed many times over below
    cfg.training.epochs = 30
    job_id = jobs.start_record(cfg)["job_id"]
    # Started as from a terminal or by an earlier server: not this server's child.
    worker_proc = subprocess.Popen([sys.executable, "-m", "stt.runs.worker", "--job", job_id, "--config-json",
                                    jobs._config_json(cfg, cfg.training.mode)], cwd=jobs.PROJECT_ROOT)
    try:
        wait_for(client, job_id, states=("training",), timeout=120)
        assistant = database.connect(cfg.database.path, busy_timeout_ms=100)
        assistant.execute("BEGIN IMMEDIATE")
        try:
            for _ in range(8):  # the dashboard polls every half second under the lock
                assert client.get(f"/api/train/{job_id}").get_json()["state"] in runs.ACTIVE
                time.sleep(0.5)
            assert client.post("/api/train").status_code == 409
            assert jobs.work_dir(cfg, job_id).is_dir()
        finally:
            assistant.execute("ROLLBACK")
            assistant.close()
        run = wait_for(client, job_id, timeout=240)
    finally:
        worker_proc.wait(timeout=240)
    assert run["state"] == "done", run["message"]
    assert conn.execute("SELECT COUNT(*) FROM s2s_app_train_runs").fetchone()[0] == 1
