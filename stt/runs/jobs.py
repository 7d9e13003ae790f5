"""Training jobs: planned and started here (web app and `main.py`), run by `python -m stt.runs.worker`.

A separate process keeps the web app responsive and out of harm's way (a
crash or an out-of-memory kill in training cannot take the server down), and
it works the same on Windows (no fork, no signals): the worker is a fresh
Python, cancellation is a flag in the database it polls between steps, and
a lock it holds beside the model (stt/runs/liveness.py) tells the app it is alive, where the
database lock the assistant may hold could delay its heartbeat.

What the worker does, and the order of a run's last steps that keeps a crash
harmless, is in stt.runs.worker.
"""
from __future__ import annotations

import dataclasses
import json
import random
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stt.models import deploy_lock, disk_use, model_info, store
from stt.models.model_format import ModelFormatError, detect_format
from stt.runs import announce, liveness, run_space, warm
from utils import database, disk, rollbacks, runs, training_sets
from utils.config import Config

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# How long a worker may take to notice a cancel (it polls between steps, but importing a
# CTranslate2 model or one long step can take a while) before it is ended by force.
CANCEL_GRACE_S = 120
# How long a Train click waits for the last run's worker, already recorded as finished, to tell the
# assistant, tidy up and release its lock.
FINISHING_GRACE_S = 10.0
# Processes this web app started, so their exit is noticed at once rather than after the heartbeat timeout.
_children: dict[str, subprocess.Popen] = {}
_initialized: set[Path] = set()


class JobError(Exception):
    """Why a run (or a rollback, or a cancel) cannot go ahead: `error` names the case
    (training/src/errors.py gives each its HTTP status), `message` says it to a person."""

    def __init__(self, error: str, message: str, **extra: Any):
        super().__init__(message)
        self.error, self.message, self.extra = error, message, extra


def connect(cfg: Config) -> sqlite3.Connection:
    """A connection to the shared database with the app's and the run tables in place."""
    if cfg.database.path not in _initialized:  # `main.py train` may be the first to open the file
        database.init_db(cfg.database.path, cfg.database.busy_timeout_ms)
        _initialized.add(cfg.database.path)
    conn = database.connect(cfg.database.path, cfg.database.busy_timeout_ms)
    return conn


@dataclass
class Plan:
    """The items of one run by role: trained on, measured on, or rehearsed from earlier runs."""
    train: list[int]
    heldout: list[int]
    regression: list[int]     # the reviewer's regression checks, whose WER must not rise
    rehearsal: list[int]      # items earlier runs learned, trained again so they are not forgotten


def plan(conn: sqlite3.Connection, cfg: Config) -> Plan:
    """What a run started now would use."""
    heldout = training_sets.heldout_ids(conn, cfg.training.heldout_fraction, cfg.training.heldout_min)
    held = set(heldout)
    train = [i for i in training_sets.trainable_ids(conn) if i not in held]
    regression = training_sets.regression_ids(conn)
    rehearsal = sorted(rehearsal_sample(training_sets.learned_ids(conn), len(train), cfg))
    return Plan(train, heldout, regression, rehearsal)


# Earlier items rehearsed per new item. With one per new item, a third round of the three-round benchmark
# (docs/performance.md) rehearsed half of the first round's items and lost 7 points of its held-out WER;
# two cover both earlier rounds there.
REHEARSAL_PER_NEW = 2


def rehearsal_sample(learned: list, new: int, cfg: Config) -> list:
    """Which learned items a run trains on again: up to REHEARSAL_PER_NEW per new item, at most
    rehearsal_max; seeded by what is learned, so a retried run rehearses the same items."""
    count = min(len(learned), REHEARSAL_PER_NEW * new, cfg.training.rehearsal_max)
    return random.Random(cfg.training.seed + len(learned)).sample(learned, count)


def work_dir(cfg: Config, job_id: str) -> Path:
    """Scratch space of one run beside the model: same disk, so finished files move by rename."""
    return cfg.model.path.with_name(f"{cfg.model.path.name}.work-{job_id}")


def reap(conn: sqlite3.Connection, cfg: Config) -> None:
    """Settle runs whose worker is gone, and end workers that ignore a cancel; cheap enough for every status read.

    Workers this process started are watched through their handles (an exit is
    seen at once, and `terminate()` is the last resort for an overdue cancel);
    a run whose worker holds the model's worker lock is alive whoever started it;
    only where that cannot be told is a run judged by its heartbeat.
    """
    active = runs.active(conn)
    if active is None:  # the usual case: one lookup per status read
        ended = [job for job, proc in _children.items() if proc.poll() is not None]
        for job_id in ended:
            del _children[job_id]
        if ended:
            warm.after_deploy(cfg)
        return
    for job_id in runs.cancel_overdue(conn, CANCEL_GRACE_S):
        proc = _children.get(job_id)
        if proc is not None and proc.poll() is None:
            proc.terminate()  # TerminateProcess on Windows; the run's last steps are crash-safe
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                continue  # still going: the next look tries again
            _children.pop(job_id)
            runs.finish(conn, job_id, "cancelled", f"Cancelled: the training process did not stop within "
                        f"{CANCEL_GRACE_S} s and was ended. The deployed model was not changed.")
            shutil.rmtree(work_dir(cfg, job_id), ignore_errors=True)
    exited = {job: proc.returncode for job, proc in list(_children.items()) if proc.poll() is not None}
    alive = [job for job in _children if job not in exited]
    if active["job_id"] not in exited and liveness.worker_alive(cfg.model.path):
        alive.append(active["job_id"])  # only one run is active, and a live worker is its worker
    reaped = runs.reap(conn, exited, store.deployed_version(cfg.model.path), alive)
    for job_id in exited:
        _children.pop(job_id, None)
    if exited:
        warm.after_deploy(cfg)
    for job_id in reaped:
        shutil.rmtree(work_dir(cfg, job_id), ignore_errors=True)


def settle(conn: sqlite3.Connection, cfg: Config) -> None:
    """Reap, then give a worker whose run is already finished a few seconds to let go of the model: a click
    right after "done" would otherwise find it still telling the assistant and removing its work files."""
    reap(conn, cfg)
    deadline = time.monotonic() + FINISHING_GRACE_S
    while runs.active(conn) is None and liveness.worker_alive(cfg.model.path) and time.monotonic() < deadline:
        time.sleep(0.2)


def recover(cfg: Config) -> None:
    """At app start: fail runs that died while the app was down, then undo a half-done swap and drop leftovers.

    The repair is skipped while a worker is alive, since that worker may be in
    the middle of its own swap.
    """
    conn = connect(cfg)
    try:
        reap(conn, cfg)
        if runs.active(conn) is None:
            store.repair(cfg.model.path)
            for leftover in cfg.model.path.parent.glob(f"{cfg.model.path.name}.work-*"):
                shutil.rmtree(leftover, ignore_errors=True)
    finally:
        conn.close()


def heal(cfg: Config) -> None:
    """Repair the swap a worker left half done when it died between its two renames.

    Called wherever the model folder is looked for (health, training start,
    transcription, model info), not only at start-up: otherwise the folder stays
    missing until the server restarts, and everything that could fix it refuses
    for want of a model. Costs two stat calls when nothing is wrong.

    It lives with the runs, not in stt.models.store (which does the repair
    itself): whether a half-done swap may be undone depends on whether a
    worker is alive and may be between its renames, which only the runs'
    records and process handles can tell.
    """
    if not cfg.model.path.exists() and store.swap_interrupted(cfg.model.path):
        recover(cfg)


def check_can_start(conn: sqlite3.Connection, cfg: Config, no_model: str) -> None:
    """Inside the write transaction that records a run (training or model import): nothing else runs,
    and a model is deployed; JobError otherwise, `no_model` opening the sentence for the latter."""
    running = runs.active(conn)
    if running:
        raise JobError("job_running", "A training run is already in progress.", job_id=running["job_id"])
    if liveness.worker_alive(cfg.model.path):
        raise JobError("job_running", "A training process of this model is still running (started from a "
                       "terminal or by an earlier server): wait for it to end, or stop it.")
    try:
        detect_format(cfg.model.path)
    except ModelFormatError as exc:
        raise JobError("model_missing", f"{no_model}: {exc}") from None
    if cfg.assistant.language != "en" and model_info.english_only(cfg.model.path):
        raise JobError("language_mismatch", f"The model at {cfg.model.path} is English-only, but assistant.language "
                       f"is {cfg.assistant.language!r}: set it to \"en\", or use a multilingual model.")
    problem = store.write_problem(cfg.model.path)
    if problem is not None:
        raise JobError("model_read_only", f"Nothing can be written beside the model folder ({problem.strerror}: "
                       f"{problem.filename}): a run keeps its versions and swaps the model there. Make "
                       f"{cfg.model.path.parent} writable, or move the model to a folder that is.")
    try:
        run_space.ensure(cfg, run_space.copies(cfg.model.path), "a training run (its working copy of the model, "
                         "the trained model, its export, the kept version and the deploy's copy)")
    except disk.DiskShort as exc:
        raise JobError("disk_full", str(exc)) from None


def start_record(cfg: Config, mode: str | None = None) -> dict[str, Any]:
    """Check that a run can start and record it as queued; raises JobError saying why not."""
    heal(cfg)
    conn = connect(cfg)
    try:
        settle(conn, cfg)
        # Refused at once where it can be, without waiting on a write lock the assistant may hold.
        check_can_start(conn, cfg, "No trainable model")
        # Check and record in one write transaction: two Train clicks (or the web app and
        # `main.py train`) cannot both see "nothing running".
        with database.transaction(conn):
            check_can_start(conn, cfg, "No trainable model")
            planned = plan(conn, cfg)
            if not planned.train:
                raise JobError("nothing_pending", _nothing_pending(conn, cfg))
            job_id = runs.create(conn, mode or cfg.training.mode, len(planned.train), len(planned.heldout))
            # The run uses exactly these items, however many more get reviewed before its worker starts,
            # and what it holds out stays held out in every later run.
            training_sets.keep_heldout(conn, planned.heldout)
            runs.record_items(conn, job_id, [(i, role, None)
                                             for role in ("train", "heldout", "regression", "rehearsal")
                                             for i in getattr(planned, role)])
    finally:
        conn.close()
    train, heldout = len(planned.train), len(planned.heldout)
    return {"success": True, "trained_count": train, "heldout_count": heldout, "job_id": job_id,
            "message": f"Training started on {train} items ({heldout} held out to measure)."}


def start(cfg: Config, mode: str | None = None) -> dict[str, Any]:
    """Record a run and launch its worker process; returns what POST /api/train answers."""
    started = start_record(cfg, mode)
    job_id = started["job_id"]
    warm.stop()  # the run needs the cores; it encodes whatever the warm-up had not cached yet
    try:
        _children[job_id] = subprocess.Popen(
            [sys.executable, "-m", "stt.runs.worker", "--job", job_id,
             "--config-json", _config_json(cfg, mode or cfg.training.mode)],
            cwd=str(PROJECT_ROOT),
        )
    except OSError as exc:
        conn = connect(cfg)
        runs.finish(conn, job_id, "failed", f"The training process could not be started: {exc}.")
        conn.close()
        raise JobError("worker_failed", f"The training process could not be started: {exc}.") from None
    return started


def cancel(cfg: Config, job_id: str) -> dict[str, Any]:
    """Ask a run to stop; the worker notices between steps and leaves everything as it was."""
    conn = connect(cfg)
    try:
        run = runs.get(conn, job_id)
        if run is None:
            raise JobError("not_found", f"No training run {job_id}.")
        if run["state"] not in runs.ACTIVE:
            raise JobError("not_running", f"The run has already ended ({run['state']}).")
        runs.request_cancel(conn, job_id)
        return {"job_id": job_id, "state": run["state"], "message": "Cancelling after the current step."}
    finally:
        conn.close()


def _nothing_pending(conn: sqlite3.Connection, cfg: Config) -> str:
    """Why a run has nothing to train on, in the counts the dashboard shows: "review some items first"
    misleads a user who has reviewed fifty."""
    counts = training_sets.stats(conn, cfg.training.heldout_fraction, cfg.training.heldout_min)
    if not counts["reviewed"]:
        return "Nothing to train on: no item is reviewed yet. Review some in the editor first."
    parts = [f"{counts[key]} {label}" for key, label in (
        ("trained", "trained already"), ("heldout", "held out to measure runs"),
        ("regression", "regression checks"), ("unusable", "not usable (the dashboard says why)")) if counts[key]]
    return (f"Nothing new to train on: of the {counts['reviewed']} reviewed items, "
            f"{', '.join(parts) or 'none is new'}. Review more recordings first.")


def rollback(cfg: Config, version: str) -> dict[str, Any]:
    """Deploy a kept version, and make is_trained agree with what that model has learned.

    Flags the two models disagree on are cleared before the swap and set after
    it, so a crash in between leaves items pending, never wrongly marked.
    """
    conn = connect(cfg)
    try:
        with deploy_lock.held(cfg.model.path):  # the lineage read and the flags written with no deploy between
            _deploy_version(conn, cfg, version)
    except deploy_lock.DeployBusy as exc:
        raise JobError("model_busy", str(exc)) from None
    finally:
        conn.close()
    told = announce.announce(cfg)
    warm.after_deploy(cfg)
    message = f"Version {version} is deployed." + (f" {told['message']}" if told and not told["ok"] else "")
    return {"success": True, "version": version, "message": message, "assistant_told": told}


def _deploy_version(conn: sqlite3.Connection, cfg: Config, version: str) -> None:
    reap(conn, cfg)
    if runs.active(conn):
        raise JobError("job_running", "Wait for the training run to finish before rolling back.")
    kept = [v["version"] for v in store.list_versions(cfg.model.path)]
    if version not in kept:
        raise JobError("not_found", f"There is no kept model version {version!r}; "
                       + (f"the kept ones are {', '.join(kept)}." if kept else "no version is kept yet."),
                       kept=kept)
    old, new = store.lineage(cfg.model.path), store.lineage(cfg.model.path, version)
    _sync(conn, [v for v in old if v in new])
    try:
        store.deploy(cfg.model.path, version, cfg.database.keep_free_mb)
    except (store.StoreError, OSError) as exc:
        _sync(conn, old)
        raise JobError("disk_full" if isinstance(exc, disk.DiskShort) else "rollback_failed",
                       f"Could not deploy version {version}: {exc}. "
                       "The model that was deployed is still in place.") from None
    with database.transaction(conn):
        runs.sync_trained(conn, new)
        rollbacks.record(conn, version, old[-1])  # the lineage ends with the deployed one (or v0-original)


def clear_caches(cfg: Config) -> dict[str, Any]:
    """Delete the rebuildable caches beside the model, unless a run (or a worker of the model) is using them."""
    conn = connect(cfg)
    try:
        settle(conn, cfg)
        if runs.active(conn) or liveness.worker_alive(cfg.model.path):
            raise JobError("job_running", "Wait for the training run to finish: it is using the caches.")
    finally:
        conn.close()
    warm.stop()  # it would write into what is being removed
    freed = disk_use.clear_caches(cfg.model.path)
    return {"success": True, "freed_bytes": freed,
            "message": f"Freed {freed / disk_use.MB:,.0f} MB. The next Train click computes what it needs again, "
                       "so it takes a little longer."}


def _sync(conn: sqlite3.Connection, lineage: list[str]) -> None:
    with database.transaction(conn):
        runs.sync_trained(conn, lineage)


def _config_json(cfg: Config, mode: str) -> str:
    """The worker's whole configuration, so it trains exactly as this process is configured.

    The server section is left out: the worker does not need the access token,
    and a command line is visible to every user of the computer.
    """
    data = dataclasses.asdict(cfg)
    data.pop("root")
    data.pop("server")
    data["training"]["mode"] = mode
    return json.dumps(data, default=str)

