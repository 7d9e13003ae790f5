"""What the dashboard shows while a run works: an ETA that does not climb while a slow step runs."""
from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from utils import runs, schema


def ago(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat(timespec="seconds")


def test_eta_uses_the_pace_of_finished_steps_and_never_climbs_while_one_runs(conn):
    schema.migrate(conn)
    job = runs.create(conn, "adapt", items=10, heldout=3)
    runs.update(conn, job, state="training", phase="training", step=1, total=10)
    seen = []
    for waited in (0, 5, 10, 60, 600):  # step 1 took 10 s; step 2 has been running for `waited` seconds
        conn.execute("UPDATE s2s_app_train_runs SET phase_started_at = ?, step_at = ? WHERE job_id = ?",
                     (ago(10 + waited), ago(waited), job))
        seen.append(runs.get(conn, job)["eta_s"])
    assert 85 <= seen[0] <= 90  # nine steps at 10 s
    assert all(later <= earlier for earlier, later in zip(seen, seen[1:])), seen
    assert seen[-1] >= 75  # eight steps are still ahead whatever the current one does


def test_a_new_step_and_a_new_phase_restart_the_clocks(conn):
    schema.migrate(conn)
    job = runs.create(conn, "adapt", items=4, heldout=1)
    runs.update(conn, job, state="training", phase="training", step=0, total=4)
    first = runs.get(conn, job)
    assert first["step_at"] == first["phase_started_at"]
    conn.execute("UPDATE s2s_app_train_runs SET step_at = ? WHERE job_id = ?", (ago(30), job))
    runs.update(conn, job, step=1)
    assert runs.get(conn, job)["step_at"] > ago(5)


def test_a_table_from_an_older_version_gains_the_column(tmp_path):
    conn = sqlite3.connect(tmp_path / "old.db", isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("CREATE TABLE s2s_app_train_runs (job_id TEXT PRIMARY KEY, state TEXT NOT NULL, phase TEXT, "
                 "step INTEGER DEFAULT 0, total INTEGER DEFAULT 0, loss REAL, mode TEXT, items INTEGER DEFAULT 0, "
                 "heldout_items INTEGER DEFAULT 0, pid INTEGER, cancel_requested INTEGER DEFAULT 0, "
                 "started_at TEXT NOT NULL, phase_started_at TEXT, heartbeat_at TEXT, finished_at TEXT, "
                 "message TEXT, deployed INTEGER DEFAULT 0, version TEXT, result_json TEXT)")
    schema.migrate(conn)
    job = runs.create(conn, "adapt", items=1, heldout=1)
    runs.update(conn, job, state="training", phase="training", step=1, total=2)
    assert runs.get(conn, job)["eta_s"] is not None


def test_training_resumed_after_a_validation_is_timed_from_where_it_resumed(conn):
    """Training comes back at step 11 of 20 after an epoch's check: its pace counts the steps since then."""
    schema.migrate(conn)
    job = runs.create(conn, "adapt", items=10, heldout=3)
    runs.update(conn, job, state="training", phase="training", step=10, total=20)
    runs.update(conn, job, state="training", phase="validating", step=3, total=3)
    runs.update(conn, job, state="training", phase="training", step=11, total=20)
    # Steps 11 and 12 took 10 s each since training resumed: eight are left.
    conn.execute("UPDATE s2s_app_train_runs SET step = 12, phase_started_at = ?, step_at = ? WHERE job_id = ?",
                 (ago(20), ago(0), job))
    assert 75 <= runs.get(conn, job)["eta_s"] <= 80  # not 8 x 20 s / 12 steps, as counting from step 0 would say


def test_an_active_run_is_placed_in_the_whole_run_from_the_last_runs_timings(conn):
    """Issue 34: the bar restarted in every phase and the estimate covered only the phase under way."""
    import json

    schema.migrate(conn)
    first = runs.create(conn, "adapt", items=10, heldout=3)
    assert runs.get(conn, first)["overall_percent"] is None  # a first run has nothing to go by
    runs.finish(conn, first, "done", "Deployed.", result_json=json.dumps(
        {"phase_seconds": {"loading": 5.0, "encoding": 10.0, "training": 60.0, "measuring after": 20.0}}))
    conn.execute("UPDATE s2s_app_train_runs SET started_at = ?, finished_at = ? WHERE job_id = ?",
                 (ago(1000), ago(900), first))
    second = runs.create(conn, "adapt", items=20, heldout=3)
    conn.execute("UPDATE s2s_app_train_runs SET state = 'training', started_at = ? WHERE job_id = ?", (ago(30), second))
    run = runs.get(conn, second)
    # 100 s before, 70 of them per item: twice the items, 30 + 140 = 170 s; 30 s gone.
    assert 29 <= run["elapsed_s"] <= 33
    assert 136 <= run["remaining_s"] <= 141
    assert 17 <= run["overall_percent"] <= 19.5
    assert runs.latest(conn)["overall_percent"] == run["overall_percent"]
    other_mode = runs.create(conn, "full", items=20, heldout=3)
    conn.execute("UPDATE s2s_app_train_runs SET state = 'cancelled' WHERE job_id = ?", (second,))
    assert runs.get(conn, other_mode)["overall_percent"] is None  # another mode's runs take other times
