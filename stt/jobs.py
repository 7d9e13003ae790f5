"""Training jobs: started from the web app in their own process, run by `python -m stt.jobs`.

A separate process keeps the web app responsive and out of harm's way (a
crash or an out-of-memory kill in training cannot take the server down), and
it works the same on Windows (no fork, no signals): the worker is a fresh
Python, cancellation is a flag in the database it polls between steps, and
its heartbeat tells the app it is alive.

The order of a run's last steps is what keeps a crash harmless: the new model
is kept as a version, then swapped in atomically (stt.store), and only then are
its items marked trained, in the same transaction that records the run as done.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from stt import runs, store
from stt.model_format import CTRANSLATE2, ModelFormatError, detect_format
from utils import audio, database
from utils.config import Config, load_config

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HEARTBEAT_S = 5
# How long a worker may take to notice a cancel (it polls between steps, but importing a
# CTranslate2 model or one long step can take a while) before it is ended by force.
CANCEL_GRACE_S = 120
# What the dashboard says under the progress bar in each phase of a run.
PHASE_MESSAGES = {"preparing": "Decoding the audio and computing features.",
                  "training": "Training on the reviewed recordings.",
                  "evaluating": "Measuring word error rate before and after.", "saving": "Saving the model."}
# Processes this web app started, so their exit is noticed at once rather than after the heartbeat timeout.
_children: dict[str, subprocess.Popen] = {}
_initialized: set[Path] = set()


class JobError(Exception):
    """Why a run cannot start; `status` is the HTTP status the API answers with."""

    def __init__(self, status: int, error: str, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.error, self.message, self.extra = status, error, message, extra


def connect(cfg: Config) -> sqlite3.Connection:
    """A connection to the shared database with the app's and the run tables in place."""
    if cfg.database.path not in _initialized:  # `main.py train` may be the first to open the file
        database.init_db(cfg.database.path, cfg.database.busy_timeout_ms)
        _initialized.add(cfg.database.path)
    conn = database.connect(cfg.database.path, cfg.database.busy_timeout_ms)
    runs.init_tables(conn)
    return conn


def plan(conn: sqlite3.Connection, cfg: Config) -> tuple[list[int], list[int], list[int]]:
    """The items a run would train on, the held-out ones it measures on, and the reviewer's
    regression items, whose WER must not rise."""
    heldout = database.heldout_ids(conn, cfg.training.heldout_fraction, cfg.training.heldout_min)
    pending = [r[0] for r in conn.execute(
        f"SELECT d.id FROM {database.BY_LIST} WHERE {database.TRAINABLE} ORDER BY d.id")]
    regression = [r[0] for r in conn.execute(
        f"SELECT d.id FROM {database.BY_LIST} WHERE d.is_reviewed = 1 AND NOT {database.NOT_REGRESSION} ORDER BY d.id")]
    held = set(heldout)
    return [i for i in pending if i not in held], heldout, regression


def work_dir(cfg: Config, job_id: str) -> Path:
    """Scratch space of one run beside the model: same disk, so finished files move by rename."""
    return cfg.model.path.with_name(f"{cfg.model.path.name}.work-{job_id}")


def reap(conn: sqlite3.Connection, cfg: Config) -> None:
    """Settle runs whose worker is gone, and end workers that ignore a cancel; cheap enough for every status read.

    Workers this process started are watched through their handles (an exit is
    seen at once, and `terminate()` is the last resort for an overdue cancel);
    any other run is judged by its heartbeat alone.
    """
    if runs.active(conn) is None:  # the usual case: one lookup per status read
        for job_id in [job for job, proc in _children.items() if proc.poll() is not None]:
            del _children[job_id]
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
    reaped = runs.reap(conn, exited, store.deployed_version(cfg.model.path), alive)
    for job_id in exited:
        _children.pop(job_id, None)
    for job_id in reaped:
        shutil.rmtree(work_dir(cfg, job_id), ignore_errors=True)


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


def start_record(cfg: Config, mode: str | None = None) -> dict[str, Any]:
    """Check that a run can start and record it as queued; raises JobError saying why not."""
    conn = connect(cfg)
    try:
        reap(conn, cfg)
        # Check and record in one write transaction: two Train clicks (or the web app and
        # `main.py train`) cannot both see "nothing running".
        conn.execute("BEGIN IMMEDIATE")
        running = runs.active(conn)
        if running:
            raise JobError(409, "job_running", "A training run is already in progress.", job_id=running["job_id"])
        try:
            detect_format(cfg.model.path)
        except ModelFormatError as exc:
            raise JobError(400, "model_missing", f"No trainable model: {exc}") from None
        train_ids, heldout_ids, regression_ids = plan(conn, cfg)
        if not train_ids:
            raise JobError(400, "nothing_pending",
                           "Nothing to train on: review some items first (held-out items are only used to measure).")
        job_id = runs.create(conn, mode or cfg.training.mode, len(train_ids), len(heldout_ids))
        # The run uses exactly these items, however many more get reviewed before its worker starts.
        runs.record_items(conn, job_id, [(i, "train", None) for i in train_ids] +
                          [(i, "heldout", None) for i in heldout_ids] +
                          [(i, "regression", None) for i in regression_ids])
        conn.execute("COMMIT")
    finally:
        _rollback(conn)
        conn.close()
    return {"success": True, "trained_count": len(train_ids), "heldout_count": len(heldout_ids), "job_id": job_id,
            "message": f"Training started on {len(train_ids)} items ({len(heldout_ids)} held out to measure)."}


def start(cfg: Config, mode: str | None = None) -> dict[str, Any]:
    """Record a run and launch its worker process; returns what POST /api/train answers."""
    started = start_record(cfg, mode)
    job_id = started["job_id"]
    try:
        _children[job_id] = subprocess.Popen(
            [sys.executable, "-m", "stt.jobs", "--job", job_id,
             "--config-json", _config_json(cfg, mode or cfg.training.mode)],
            cwd=str(PROJECT_ROOT),
        )
    except OSError as exc:
        conn = connect(cfg)
        runs.finish(conn, job_id, "failed", f"The training process could not be started: {exc}.")
        conn.close()
        raise JobError(503, "worker_failed", f"The training process could not be started: {exc}.") from None
    return started


def cancel(cfg: Config, job_id: str) -> dict[str, Any]:
    """Ask a run to stop; the worker notices between steps and leaves everything as it was."""
    conn = connect(cfg)
    try:
        run = runs.get(conn, job_id)
        if run is None:
            raise JobError(404, "not_found", f"No training run {job_id}.")
        if run["state"] not in runs.ACTIVE:
            raise JobError(409, "not_running", f"The run has already ended ({run['state']}).")
        runs.request_cancel(conn, job_id)
        return {"job_id": job_id, "state": run["state"], "message": "Cancelling after the current step."}
    finally:
        conn.close()


def rollback(cfg: Config, version: str) -> dict[str, Any]:
    """Deploy a kept version, and make is_trained agree with what that model has learned.

    Flags the two models disagree on are cleared before the swap and set after
    it, so a crash in between leaves items pending, never wrongly marked.
    """
    conn = connect(cfg)
    try:
        reap(conn, cfg)
        if runs.active(conn):
            raise JobError(409, "job_running", "Wait for the training run to finish before rolling back.")
        if version not in {v["version"] for v in store.list_versions(cfg.model.path)}:
            raise JobError(404, "not_found", f"There is no kept model version {version!r}.")
        old, new = store.lineage(cfg.model.path), store.lineage(cfg.model.path, version)
        _sync(conn, [v for v in old if v in new])
        try:
            store.deploy(cfg.model.path, version)
        except (store.StoreError, OSError) as exc:
            _sync(conn, old)
            raise JobError(409, "rollback_failed", f"Could not deploy version {version}: {exc}. "
                           "The model that was deployed is still in place.") from None
        _sync(conn, new)
    finally:
        conn.close()
    return {"success": True, "version": version, "message": f"Version {version} is deployed."}


def _sync(conn: sqlite3.Connection, lineage: list[str]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    runs.sync_trained(conn, lineage)
    conn.execute("COMMIT")


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


# ---- the worker ---------------------------------------------------------------------------------


def load_samples(conn: sqlite3.Connection, cfg: Config, ids: list[int], skipped: list[int] | None = None) -> list:
    """Decoded 16 kHz samples of items; those without audio or transcript go to `skipped`."""
    from stt.engine import Sample

    samples = []
    for item_id in ids:
        row = conn.execute(f"SELECT transcript, audio_blob FROM {database.TABLE} WHERE id = ? AND is_reviewed = 1",
                           (item_id,)).fetchone()
        if row is None or not (row[0] or "").strip():
            if skipped is not None:
                skipped.append(item_id)
            continue
        blob = bytes(row[1] or b"")
        try:
            samples.append(Sample(item_id, row[0], audio.load_for_whisper(blob, cfg.audio)))
        except audio.AudioError as exc:
            # Remembered like the editor's own check, so the item stops counting as pending.
            database.store_audio_meta(conn, item_id, len(blob), None, None, None, str(exc))
            if skipped is not None:
                skipped.append(item_id)
    return samples


def load_regression(cfg: Config) -> list:
    """Clips of ordinary speech whose WER must not rise: `<name>.wav` + `<name>.txt` pairs in regression_dir
    (besides the items the reviewer flagged, which load_samples reads)."""
    from stt.engine import Sample

    if not cfg.training.regression_dir:
        return []
    folder = Path(cfg.training.regression_dir)
    folder = folder if folder.is_absolute() else cfg.root / folder
    if not folder.is_dir():  # a typo must not silently switch the check off
        raise RuntimeError(f"the regression folder {folder} (training.regression_dir) does not exist")
    samples = []
    for i, wav in enumerate(sorted(folder.glob("*.wav"))):
        text = wav.with_suffix(".txt")
        if text.is_file():
            samples.append(Sample(-(i + 1), text.read_text(encoding="utf-8").strip(),
                                  audio.load_for_whisper(wav.read_bytes(), cfg.audio)))
    return samples


def verdict(result: Any, tolerance: float) -> tuple[bool, str]:
    """Deploy only if neither held-out nor regression WER got worse by more than the tolerance."""
    checks = [("held-out", result.wer_before, result.wer_after),
              ("regression", result.regression_wer_before, result.regression_wer_after)]
    for name, before, after in checks:
        if before is not None and after is not None and after > before + tolerance:
            return False, (f"Not deployed: {name} WER got worse ({before:.1%} → {after:.1%}); "
                           "the new model is kept as a rejected version.")
    if result.wer_before is None:
        return True, "Deployed (no held-out items to measure WER on)."
    return True, f"Deployed: held-out WER {result.wer_before:.1%} → {result.wer_after:.1%}."


def run(job_id: str, cfg: Config, on_progress: Callable[[Any], None] | None = None) -> dict[str, Any] | None:
    """Run one training job to its end, recording every phase; returns the finished run."""
    conn = connect(cfg)
    # The heart beats before torch is imported: that alone can take half a minute on a busy machine.
    runs.update(conn, job_id, pid=os.getpid())
    work = work_dir(cfg, job_id)
    stop = threading.Event()

    def beat() -> None:  # a silent worker is a dead worker to the reaper, even during a long step
        beat_conn = connect(cfg)
        while not stop.wait(HEARTBEAT_S):
            try:
                runs.update(beat_conn, job_id)
            except sqlite3.Error:
                pass  # the assistant held the lock past the timeout: the next beat will do
        beat_conn.close()

    threading.Thread(target=beat, daemon=True).start()
    from transformers.utils import logging as hf_logging

    from stt.engine import Cancelled, Progress, fine_tune, pick_device, resolve_mode

    # The run reports its own progress; library progress bars and deprecation chatter only bury it.
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    store.repair(cfg.model.path)
    last_write = [0.0]

    def progress(p: Progress) -> None:
        if on_progress:
            on_progress(p)
        if time.monotonic() - last_write[0] > 0.5 or p.step == p.total:
            last_write[0] = time.monotonic()
            # "evaluating" happens twice; a phase of its own each, so the ETA restarts and the page can tell them apart.
            phase = f"{p.stage} training" if p.stage else p.phase
            runs.update(conn, job_id, state=p.phase, phase=phase, step=p.step, total=p.total, loss=p.loss,
                        message=PHASE_MESSAGES.get(p.phase, ""))

    try:
        runs.update(conn, job_id, state="preparing", phase="preparing", message=PHASE_MESSAGES["preparing"])
        train_ids, heldout_ids, regression_ids = runs.planned_items(conn, job_id)
        skipped: list[int] = []
        train = load_samples(conn, cfg, train_ids, skipped)
        heldout = load_samples(conn, cfg, heldout_ids, skipped)
        flagged = load_samples(conn, cfg, regression_ids, skipped)
        # What each item said when the run read it: only items still saying it are marked trained.
        runs.record_items(conn, job_id, [(x.id, role, x.text) for role, group in
                                         (("train", train), ("heldout", heldout), ("regression", flagged))
                                         for x in group] + [(i, "skipped", None) for i in skipped])
        regression = flagged + load_regression(cfg)
        if not train:
            raise RuntimeError("none of the pending items has decodable audio and a transcript")
        # The history shows what ran ("decoder"), not what was asked for ("auto").
        runs.update(conn, job_id, items=len(train), heldout_items=len(heldout),
                    mode=resolve_mode(cfg.training.mode, pick_device()))
        fmt = detect_format(cfg.model.path)
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        base = cfg.model.path
        if fmt == CTRANSLATE2:
            from stt.ct2_import import ct2_to_hf

            base = work / "base"
            ct2_to_hf(cfg.model.path, base)
        trained = work / "trained"
        result = fine_tune(base, trained, train, heldout, regression, cfg.training, progress=progress,
                           should_stop=lambda: runs.cancel_requested(conn, job_id))
        runs.update(conn, job_id, state="saving", phase="saving", step=0, total=1, message=PHASE_MESSAGES["saving"])
        candidate = trained
        if fmt == CTRANSLATE2:
            from stt.ct2_export import ct2_quantization, export_ct2

            candidate = work / "export"
            export_ct2(trained, candidate, ct2_quantization(cfg.model.path))
        if runs.cancel_requested(conn, job_id):  # asked during the export: still nothing has changed
            raise Cancelled("cancelled before saving")
        accepted, message = verdict(result, cfg.training.wer_tolerance)
        if skipped:
            shown = ", ".join(map(str, skipped[:10])) + (" ..." if len(skipped) > 10 else "")
            message += (f" {len(skipped)} item(s) left out: no words or audio that cannot be decoded "
                        f"(ids {shown}); fix them in the editor to use them.")
        metrics = {**dataclasses.asdict(result), "skipped_items": skipped, "format": fmt}
        version = store.add_version(cfg.model.path, candidate, {"job_id": job_id, "accepted": accepted, **metrics})
        if accepted:
            # Recorded before the swap, so a crash right after it is reported as "deployed, items pending".
            runs.update(conn, job_id, version=version)
            store.deploy(cfg.model.path, version)
        conn.execute("BEGIN IMMEDIATE")
        marked = runs.mark_trained(conn, job_id) if accepted else 0
        if accepted and marked < len(train):
            message += f" {len(train) - marked} item(s) changed during training and stay pending."
        runs.finish(conn, job_id, "done", message, deployed=int(accepted), version=version, step=1, total=1,
                    result_json=json.dumps({**metrics, "marked_trained": marked}))
        conn.execute("COMMIT")
        store.prune(cfg.model.path, cfg.training.versions_kept)
    except Cancelled:
        _rollback(conn)
        runs.finish(conn, job_id, "cancelled", "Cancelled; the deployed model was not changed.")
    except Exception as exc:  # the run's record must say why, whatever went wrong
        _rollback(conn)
        runs.finish(conn, job_id, "failed", f"Training failed: {exc}. The deployed model was not changed.")
    finally:
        stop.set()
        shutil.rmtree(work, ignore_errors=True)
    finished = runs.get(conn, job_id)
    conn.close()
    return finished


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def main(argv: list[str] | None = None) -> int:
    """The worker process: `python -m stt.jobs --job ID --config-json JSON`, started by `start()`."""
    ap = argparse.ArgumentParser(description="Run one training job (started by the web app).")
    ap.add_argument("--job", required=True)
    ap.add_argument("--config-json", required=True)
    args = ap.parse_args(argv)
    cfg = load_config(environ={}, overrides=json.loads(args.config_json))
    finished = run(args.job, cfg)
    return 0 if finished and finished["state"] == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
