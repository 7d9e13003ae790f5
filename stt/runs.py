"""Training runs as rows of the app's own tables, so every process (web app, worker, CLI) sees one truth.

`s2s_app_train_runs` holds a run's state and progress (the worker writes,
the web app reads); `s2s_app_train_items` records which items a run used and
the transcript it saw, so only unchanged items are marked trained.
A run that stops writing its heartbeat while still "active" has died: the
reaper marks it failed, with the reason, the next time anyone looks.
"""
from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

ACTIVE = ("queued", "preparing", "training", "evaluating", "saving")
FINISHED = ("done", "failed", "cancelled")
# The worker beats every few seconds; this much silence means it is gone.
STALE_AFTER_S = 45

SCHEMA = """
CREATE TABLE IF NOT EXISTS s2s_app_train_runs (
    job_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    phase TEXT,
    step INTEGER DEFAULT 0,
    total INTEGER DEFAULT 0,
    loss REAL,
    mode TEXT,
    items INTEGER DEFAULT 0,
    heldout_items INTEGER DEFAULT 0,
    pid INTEGER,
    cancel_requested INTEGER DEFAULT 0,
    started_at TEXT NOT NULL,
    phase_started_at TEXT,
    heartbeat_at TEXT,
    finished_at TEXT,
    message TEXT,
    deployed INTEGER DEFAULT 0,
    version TEXT,
    result_json TEXT
);
CREATE TABLE IF NOT EXISTS s2s_app_train_items (
    job_id TEXT NOT NULL,
    item_id INTEGER NOT NULL,
    role TEXT NOT NULL,
    transcript TEXT,
    PRIMARY KEY (job_id, item_id)
);
"""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def init_tables(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)


def create(conn: sqlite3.Connection, mode: str, items: int, heldout: int) -> str:
    job_id = uuid.uuid4().hex[:12]
    conn.execute(
        "INSERT INTO s2s_app_train_runs(job_id, state, mode, items, heldout_items, started_at, phase_started_at, "
        "heartbeat_at, message) VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?)",
        (job_id, mode, items, heldout, now(), now(), now(), f"Queued: training on {items} items."),
    )
    return job_id


def update(conn: sqlite3.Connection, job_id: str, **fields: Any) -> None:
    """Write progress and beat the heart in one statement; a new phase restarts the ETA clock."""
    fields["heartbeat_at"] = now()
    if "phase" in fields:
        current = conn.execute("SELECT phase FROM s2s_app_train_runs WHERE job_id = ?", (job_id,)).fetchone()
        if current is None or current[0] != fields["phase"]:
            fields["phase_started_at"] = now()
    columns = ", ".join(f"{k} = ?" for k in fields)
    conn.execute(f"UPDATE s2s_app_train_runs SET {columns} WHERE job_id = ?", [*fields.values(), job_id])


def finish(conn: sqlite3.Connection, job_id: str, state: str, message: str, **fields: Any) -> None:
    update(conn, job_id, state=state, message=message, finished_at=now(), **fields)


def record_items(conn: sqlite3.Connection, job_id: str, rows: Iterable[tuple[int, str, str | None]]) -> None:
    conn.executemany("INSERT OR REPLACE INTO s2s_app_train_items(job_id, item_id, role, transcript) VALUES (?, ?, ?, ?)",
                     [(job_id, item_id, role, text) for item_id, role, text in rows])


def planned_items(conn: sqlite3.Connection, job_id: str) -> tuple[list[int], list[int]]:
    """The training and held-out item ids recorded when the run was started."""
    rows = conn.execute("SELECT item_id, role FROM s2s_app_train_items WHERE job_id = ? ORDER BY item_id", (job_id,))
    planned: dict[str, list[int]] = {"train": [], "heldout": []}
    for item_id, role in rows:
        planned.setdefault(role, []).append(item_id)
    return planned["train"], planned["heldout"]


def mark_trained(conn: sqlite3.Connection, job_id: str) -> int:
    """Set is_trained on the run's training items still exactly as the run saw them; returns how many."""
    cur = conn.execute(
        "UPDATE s2s_training_data SET is_trained = 1 WHERE id IN ("
        " SELECT i.item_id FROM s2s_app_train_items i JOIN s2s_training_data d ON d.id = i.item_id"
        " WHERE i.job_id = ? AND i.role = 'train' AND d.transcript IS i.transcript AND d.is_reviewed = 1)",
        (job_id,),
    )
    return cur.rowcount


def cancel_requested(conn: sqlite3.Connection, job_id: str) -> bool:
    row = conn.execute("SELECT cancel_requested FROM s2s_app_train_runs WHERE job_id = ?", (job_id,)).fetchone()
    return bool(row and row[0])


def _public(row: sqlite3.Row) -> dict[str, Any]:
    run = dict(row)
    result = json.loads(run.pop("result_json") or "{}")
    run.pop("cancel_requested", None)
    run["deployed"] = bool(run["deployed"])
    run["percent"] = round(100.0 * run["step"] / run["total"], 1) if run["total"] else 0.0
    run["eta_s"] = _eta(run)
    run["result"] = result
    for key in ("wer_before", "wer_after", "regression_wer_before", "regression_wer_after", "train_loss"):
        run[key] = result.get(key)
    run["duration_s"] = _seconds_between(run["started_at"], run["finished_at"]) if run["finished_at"] else None
    return run


def _seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _eta(run: dict[str, Any]) -> float | None:
    """Seconds left in the current phase, from its pace so far."""
    if run["state"] not in ACTIVE or not run["step"] or not run["total"] or not run["phase_started_at"]:
        return None
    elapsed = _seconds_between(run["phase_started_at"], now()) or 0.0
    return round(elapsed / run["step"] * (run["total"] - run["step"]), 1)


def get(conn: sqlite3.Connection, job_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM s2s_app_train_runs WHERE job_id = ?", (job_id,)).fetchone()
    return _public(row) if row else None


def latest(conn: sqlite3.Connection) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM s2s_app_train_runs ORDER BY started_at DESC, rowid DESC LIMIT 1").fetchone()
    return _public(row) if row else None


def history(conn: sqlite3.Connection, limit: int = 100) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT * FROM s2s_app_train_runs ORDER BY started_at DESC, rowid DESC LIMIT ?", (limit,))
    return [_public(r) for r in rows]


def active(conn: sqlite3.Connection) -> dict[str, Any] | None:
    marks = ",".join("?" * len(ACTIVE))
    row = conn.execute(f"SELECT * FROM s2s_app_train_runs WHERE state IN ({marks}) LIMIT 1", ACTIVE).fetchone()
    return _public(row) if row else None


def reap(conn: sqlite3.Connection, exited: dict[str, int | None] | None = None) -> list[str]:
    """Mark failed every active run whose process is known to have exited or whose heartbeat went silent."""
    exited = exited or {}
    stale = (datetime.now(timezone.utc) - timedelta(seconds=STALE_AFTER_S)).isoformat(timespec="seconds")
    marks = ",".join("?" * len(ACTIVE))
    reaped = []
    for row in conn.execute(f"SELECT job_id, heartbeat_at FROM s2s_app_train_runs WHERE state IN ({marks})",
                            ACTIVE).fetchall():
        job_id, beat = row
        if job_id in exited:
            reason = f"The training process stopped unexpectedly (exit code {exited[job_id]})."
        elif beat is None or beat < stale:
            reason = "The training process stopped responding (killed, crashed or the computer restarted)."
        else:
            continue
        finish(conn, job_id, "failed", reason + " The deployed model was not changed.")
        reaped.append(job_id)
    return reaped
