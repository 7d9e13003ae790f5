"""Training runs as rows of the app's own tables, so every process (web app, worker, CLI) sees one truth.

`s2s_app_train_runs` holds a run's state and progress (the worker writes,
the web app reads); `s2s_app_train_items` records which items a run used
(role train, heldout, regression, rehearsal or skipped; `trained` once marked) and the transcript it
saw, so only unchanged items are marked trained, and a rollback can tell which
items the model it deploys has learned.
A run that stops writing its heartbeat while still "active", and whose worker holds no lock
(stt/runs/liveness.py), has died: the reaper marks it failed, with the reason, the next time anyone looks.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from utils.database import now, transaction
from utils.schema import TABLE

ACTIVE = ("queued", "preparing", "training", "evaluating", "saving")
FINISHED = ("done", "failed", "cancelled")
# The worker beats every 5 s from a thread of its own; nine missed beats mean it is gone. Generous,
# because a loaded machine can starve a beat, and it only delays reporting a worker the app did not
# start itself (one it started is watched through its process handle instead).
STALE_AFTER_S = 45




def create(conn: sqlite3.Connection, mode: str, items: int, heldout: int) -> str:
    """Record a new queued run; its fresh heartbeat gives the worker time to start before the reaper looks."""
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
    if "phase" in fields or "step" in fields:
        current = conn.execute("SELECT phase, step FROM s2s_app_train_runs WHERE job_id = ?", (job_id,)).fetchone()
        if "phase" in fields and (current is None or current[0] != fields["phase"]):
            fields["phase_started_at"] = fields["step_at"] = now()
            # A phase is entered with the report of its first step done: that step began before it.
            fields["phase_first_step"] = max(int(fields.get("step") or 0) - 1, 0)
        elif "step" in fields and (current is None or current[1] != fields["step"]):
            fields["step_at"] = now()
    columns = ", ".join(f"{k} = ?" for k in fields)
    conn.execute(f"UPDATE s2s_app_train_runs SET {columns} WHERE job_id = ?", [*fields.values(), job_id])


def add_to_result(conn: sqlite3.Connection, job_id: str, values: dict[str, Any], note: str = "") -> None:
    """Keep `values` in a finished run's result (and `note` after its message): what happened after it was
    recorded, such as telling the assistant."""
    with transaction(conn):
        row = conn.execute("SELECT result_json, message FROM s2s_app_train_runs WHERE job_id = ?",
                           (job_id,)).fetchone()
        if row is None:
            return
        try:
            result = json.loads(row[0] or "{}")
        except ValueError:
            result = {}
        message = f"{row[1] or ''} {note}".strip() if note else row[1]
        conn.execute("UPDATE s2s_app_train_runs SET result_json = ?, message = ? WHERE job_id = ?",
                     (json.dumps({**(result if isinstance(result, dict) else {}), **values}), message, job_id))


def finish(conn: sqlite3.Connection, job_id: str, state: str, message: str, **fields: Any) -> None:
    """Put a run in a final state with the sentence the user sees."""
    update(conn, job_id, state=state, message=message, finished_at=now(), **fields)


def audio_digest(blob: bytes | None) -> str:
    """A short digest of an item's audio as a run reads it (utils/database.reviewed_text_and_audio: the
    column cast to bytes, NULL as none)."""
    return hashlib.blake2b(bytes(blob or b""), digest_size=16).hexdigest()


def _unchanged(conn: sqlite3.Connection, item: str = "d") -> str:
    """The SQL test that an item (`item`) still holds what a run (`i`) read: its transcript and its audio."""
    conn.create_function("s2s_audio_digest", 1, audio_digest, deterministic=True)
    return (f"i.transcript IS {item}.transcript AND (i.audio_digest IS NULL OR "
            f"s2s_audio_digest(CAST({item}.audio_blob AS BLOB)) IS i.audio_digest)")


def record_items(conn: sqlite3.Connection, job_id: str,
                 rows: Iterable[tuple[int, str, str | None] | tuple[int, str, str | None, str | None]]) -> None:
    """Remember which items a run uses, in which role, the transcript it saw (None until read) and, once
    read, a digest of the audio it learned (utils/runs.audio_digest)."""
    conn.executemany("INSERT OR REPLACE INTO s2s_app_train_items(job_id, item_id, role, transcript, audio_digest) "
                     "VALUES (?, ?, ?, ?, ?)",
                     [(job_id, row[0], row[1], row[2], row[3] if len(row) > 3 else None) for row in rows])


def planned_items(conn: sqlite3.Connection, job_id: str) -> dict[str, list[int]]:
    """The item ids recorded for each role when the run was started: train, heldout, regression, rehearsal."""
    rows = conn.execute("SELECT item_id, role FROM s2s_app_train_items WHERE job_id = ? ORDER BY item_id", (job_id,))
    planned: dict[str, list[int]] = {"train": [], "heldout": [], "regression": [], "rehearsal": []}
    for item_id, role in rows:
        planned.setdefault("train" if role == "trained" else role, []).append(item_id)
    return planned


def mark_trained(conn: sqlite3.Connection, job_id: str) -> int:
    """Set is_trained on the run's training items still exactly as the run saw them (transcript and audio);
    returns how many.

    Call inside the transaction that records the run as done. The items get
    role `trained`, which is what sync_trained() later relies on.
    """
    ids = [r[0] for r in conn.execute(
        f"SELECT i.item_id FROM s2s_app_train_items i JOIN {TABLE} d ON d.id = i.item_id"
        f" WHERE i.job_id = ? AND i.role = 'train' AND {_unchanged(conn)} AND d.is_reviewed = 1",
        (job_id,))]
    conn.executemany(f"UPDATE {TABLE} SET is_trained = 1 WHERE id = ?", [(i,) for i in ids])
    conn.executemany("UPDATE s2s_app_train_items SET role = 'trained' WHERE job_id = ? AND item_id = ?",
                     [(job_id, i) for i in ids])
    return len(ids)


def unreviewed_since(conn: sqlite3.Connection, job_id: str) -> int:
    """The run's training items that are no longer reviewed (mark_trained passes them over)."""
    return conn.execute(
        f"SELECT count(*) FROM s2s_app_train_items i JOIN {TABLE} d ON d.id = i.item_id"
        " WHERE i.job_id = ? AND i.role = 'train' AND d.is_reviewed IS NOT 1", (job_id,)).fetchone()[0]


def sync_trained(conn: sqlite3.Connection, lineage: list[str]) -> None:
    """Make is_trained say what the model made of versions `lineage` has learned, after any deploy by hand.

    An item counts as trained only if a run in the lineage trained on its
    current transcript and audio. That run may have been rejected and deployed later by
    hand, so its items still carry role `train`, not `trained`: a model's
    version, not the verdict, says what it learned. Items no run with a model
    trained on (trained by other means) are left alone. Call inside a transaction.
    """
    marks = ",".join("?" * len(lineage)) or "NULL"
    learned_by_a_model = ("SELECT i.item_id FROM s2s_app_train_items i JOIN s2s_app_train_runs r ON r.job_id = i.job_id"
                          " WHERE i.role IN ('train', 'trained') AND r.version IS NOT NULL")
    conn.execute(
        f"UPDATE {TABLE} SET is_trained = (is_reviewed = 1 AND EXISTS ("
        " SELECT 1 FROM s2s_app_train_items i JOIN s2s_app_train_runs r ON r.job_id = i.job_id"
        f" WHERE i.item_id = {TABLE}.id AND i.role IN ('train', 'trained') AND r.version IN ({marks})"
        f" AND {_unchanged(conn, TABLE)})) WHERE id IN ({learned_by_a_model})", lineage)


def request_cancel(conn: sqlite3.Connection, job_id: str) -> None:
    """Raise the flag the worker polls; the time is kept so an unresponsive worker can be ended later."""
    conn.execute("UPDATE s2s_app_train_runs SET cancel_requested = CAST(strftime('%s', 'now') AS INTEGER), "
                 "message = 'Cancelling after the current step.' WHERE job_id = ? AND cancel_requested = 0",
                 (job_id,))


def cancel_requested(conn: sqlite3.Connection, job_id: str) -> bool:
    """Polled by the worker between steps: cancelling is cooperative, so nothing is left half-written."""
    row = conn.execute("SELECT cancel_requested FROM s2s_app_train_runs WHERE job_id = ?", (job_id,)).fetchone()
    return bool(row and row[0])


def cancel_overdue(conn: sqlite3.Connection, grace_s: float) -> list[str]:
    """Active runs whose cancel was asked for more than `grace_s` seconds ago."""
    marks = ",".join("?" * len(ACTIVE))
    rows = conn.execute(
        f"SELECT job_id FROM s2s_app_train_runs WHERE state IN ({marks}) AND cancel_requested > 0 "
        "AND cancel_requested <= CAST(strftime('%s', 'now') AS INTEGER) - ?", (*ACTIVE, grace_s))
    return [r[0] for r in rows]


def _public(row: sqlite3.Row) -> dict[str, Any]:
    run = dict(row)
    result = json.loads(run.pop("result_json") or "{}")
    run.pop("cancel_requested", None)
    run["deployed"] = bool(run["deployed"])
    run["active"] = run["state"] in ACTIVE  # the page asks this rather than keep its own list of states
    run["percent"] = round(100.0 * run["step"] / run["total"], 1) if run["total"] else 0.0
    run["eta_s"] = _eta(run)
    run.pop("phase_first_step", None)  # only the ETA needs it
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
    """Seconds left in the current phase, from the pace of the steps done so far.

    The pace is measured up to the last finished step, not up to now: counting the time
    spent on a step still under way as if it were done made the ETA climb while a slow
    step ran (15 s to 2 min at step 1). The step under way is taken as at most one step.
    Only the steps taken since the phase was entered count: training comes back at step 41
    of 80 after each epoch's validation, and its first 40 steps were timed before that.
    """
    first = run.get("phase_first_step") or 0
    if run["state"] not in ACTIVE or not run["step"] or not run["total"] or not run["phase_started_at"] \
            or run["step"] <= first:
        return None
    last_step = run.get("step_at") or now()
    pace = (_seconds_between(run["phase_started_at"], last_step) or 0.0) / (run["step"] - first)
    under_way = min(_seconds_between(last_step, now()) or 0.0, pace)
    return round(max(pace * (run["total"] - run["step"]) - under_way, 0.0), 1)


def get(conn: sqlite3.Connection, job_id: str) -> dict[str, Any] | None:
    """One run as the API shows it, or None."""
    row = conn.execute("SELECT * FROM s2s_app_train_runs WHERE job_id = ?", (job_id,)).fetchone()
    return _with_whole_run(conn, _public(row)) if row else None


def latest(conn: sqlite3.Connection) -> dict[str, Any] | None:
    """The newest run (what GET /api/train/status shows), or None."""
    row = conn.execute("SELECT * FROM s2s_app_train_runs ORDER BY started_at DESC, rowid DESC LIMIT 1").fetchone()
    return _with_whole_run(conn, _public(row)) if row else None


# Phases whose time grows with the number of items a run trains on; the others (loading, measuring the
# built-in sets, exporting) take about as long whatever the run's size.
PER_ITEM_PHASES = ("encoding", "training", "validation", "blend")


def _with_whole_run(conn: sqlite3.Connection, run: dict[str, Any]) -> dict[str, Any]:
    """An active run's place in the whole run, not only in its phase: `elapsed_s`, and where the last finished
    run of the same mode says how long runs take (its duration, its per-item phases scaled to this run's
    items), `remaining_s` and `overall_percent`; these stay null for a first run."""
    run.update(elapsed_s=None, remaining_s=None, overall_percent=None)
    if not run["active"] or not run.get("started_at"):
        return run
    elapsed = max(_seconds_between(run["started_at"], now()) or 0.0, 0.0)
    run["elapsed_s"] = round(elapsed, 1)
    before = conn.execute(
        "SELECT items, started_at, finished_at, result_json FROM s2s_app_train_runs WHERE state = 'done' AND mode = ? "
        "AND job_id <> ? AND finished_at IS NOT NULL ORDER BY started_at DESC, rowid DESC LIMIT 1",
        (run["mode"], run["job_id"])).fetchone()
    if before is None:
        return run
    try:
        phases = json.loads(before["result_json"] or "{}").get("phase_seconds") or {}
        per_item = sum(float(phases.get(name) or 0.0) for name in PER_ITEM_PHASES)
    except (ValueError, TypeError, AttributeError):
        return run  # a result another version wrote: no estimate rather than a wrong one
    took = _seconds_between(before["started_at"], before["finished_at"]) or 0.0
    scale = (run["items"] or 0) / before["items"] if before["items"] else 1.0
    expected = max(took - per_item, 0.0) + per_item * scale
    remaining = max(expected - elapsed, run["eta_s"] or 0.0)
    run["remaining_s"] = round(remaining, 1)
    share = elapsed / (elapsed + remaining) if elapsed + remaining else 0.0
    run["overall_percent"] = round(min(99.0, 100.0 * share), 1)
    return run


def history(conn: sqlite3.Connection, limit: int = 100) -> list[dict[str, Any]]:
    """Runs, newest first."""
    rows = conn.execute("SELECT * FROM s2s_app_train_runs ORDER BY started_at DESC, rowid DESC LIMIT ?", (limit,))
    return [_public(r) for r in rows]


def active(conn: sqlite3.Connection) -> dict[str, Any] | None:
    """The run not yet in a final state, if any: there is at most one at a time."""
    marks = ",".join("?" * len(ACTIVE))
    row = conn.execute(f"SELECT * FROM s2s_app_train_runs WHERE state IN ({marks}) LIMIT 1", ACTIVE).fetchone()
    return _public(row) if row else None


def reap(conn: sqlite3.Connection, exited: dict[str, int | None] | None = None,
         deployed_version: str | None = None, alive: Iterable[str] = ()) -> list[str]:
    """Mark failed every active run whose process is known to have exited or whose heartbeat went silent.

    Runs in `alive` have a process known to be running, so their heartbeat is not judged. A failure is
    written only onto the state and heartbeat this look saw (compare and set): a beat or a finish the
    worker wrote meanwhile, say while the assistant held the database lock, wins over the reaper.

    `deployed_version` is the version now at the model path: a run that died
    after swapping its model in (its `version` is recorded just before the swap)
    says so, rather than claiming the model was not changed.
    """
    exited, alive = exited or {}, set(alive)
    stale = (datetime.now(UTC) - timedelta(seconds=STALE_AFTER_S)).isoformat(timespec="seconds")
    marks = ",".join("?" * len(ACTIVE))
    reaped = []
    for job_id, state, beat, version in conn.execute(
            f"SELECT job_id, state, heartbeat_at, version FROM s2s_app_train_runs WHERE state IN ({marks})",
            ACTIVE).fetchall():
        if job_id in exited:
            reason = f"The training process stopped unexpectedly (exit code {exited[job_id]})."
        elif job_id not in alive and (beat is None or beat < stale):
            reason = "The training process stopped responding (killed, crashed or the computer restarted)."
        else:
            continue
        if version is not None and version == deployed_version:
            reason += (f" Its new model (version {version}) had already been deployed; its items were not marked "
                       "trained and stay pending.")
        else:
            reason += " The deployed model was not changed."
        changed = conn.execute(
            "UPDATE s2s_app_train_runs SET state = 'failed', message = ?, finished_at = ?, heartbeat_at = ? "
            "WHERE job_id = ? AND state = ? AND heartbeat_at IS ?", (reason, now(), now(), job_id, state, beat))
        if changed.rowcount:
            reaped.append(job_id)
    return reaped
