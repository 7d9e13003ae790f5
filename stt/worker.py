"""The training worker: one run from its planned items to a deployed (or rejected) model.

Started as `python -m stt.worker` by stt.jobs.start (or run in-process by
`main.py train`). The order of a run's last steps is what keeps a crash
harmless: the new model is kept as a version, then swapped in atomically
(stt.store), and only then are its items marked trained, in the same
transaction that records the run as done.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from stt import deploy_rule, ordinary, runs, store
from stt.jobs import abort_transaction, connect, work_dir
from stt.model_format import CTRANSLATE2, detect_format
from utils import audio, database
from utils.columns import INVALID_TEXT
from utils.config import Config, load_config

HEARTBEAT_S = 5
# What the dashboard says under the progress bar in each phase of a run.
PHASE_MESSAGES = {"preparing": "Decoding the audio and computing features.",
                  "training": "Training on the reviewed recordings.",
                  "evaluating": "Measuring word error rate before and after.", "saving": "Saving the model."}


def load_samples(conn: sqlite3.Connection, cfg: Config, ids: list[int], skipped: list[int] | None = None) -> list:
    """Decoded 16 kHz samples of items; those without audio or transcript go to `skipped`."""
    from stt.engine import Sample

    samples = []
    for item_id in ids:
        row = conn.execute(f"SELECT transcript, {database.AUDIO_BYTES} FROM {database.TABLE} "
                           "WHERE id = ? AND is_reviewed = 1",
                           (item_id,)).fetchone()
        # Not str: the row changed to a BLOB or number since the plan; U+FFFD: not valid UTF-8 (utils/columns.py).
        if row is None or not isinstance(row[0], str) or not database.has_text(row[0]) or INVALID_TEXT in row[0]:
            if skipped is not None:
                skipped.append(item_id)
            continue
        blob = bytes(row[1] or b"")
        try:
            clip = audio.load_for_whisper(blob, cfg.audio)
            seconds = len(clip) / audio.WHISPER_RATE
            if seconds <= audio.WHISPER_WINDOW_S:
                samples.append(Sample(item_id, row[0], clip))
                continue
            # Whisper sees 30 s: the rest of the transcript would be taught with no audio under it.
            facts = audio.info(blob, cfg.audio)
            _remember(conn, item_id, len(blob), facts.mime, seconds, facts.sample_rate, None)
        except audio.AudioError as exc:
            _remember(conn, item_id, len(blob), None, None, None, str(exc))
        if skipped is not None:
            skipped.append(item_id)
    return samples


def _remember(conn: sqlite3.Connection, item_id: int, length: int, mime: str | None, seconds: float | None,
              rate: int | None, error: str | None) -> None:
    """Store what a run found out about a clip, like the editor's own check, so it stops counting as pending."""
    try:
        database.store_audio_meta(conn, item_id, length, mime, seconds, rate, error)
    except sqlite3.OperationalError:
        pass  # the assistant held the lock: the next run finds out again


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
    last_write, last_phase = [0.0], [""]

    def progress(p: Progress) -> None:
        if on_progress:
            on_progress(p)
        if time.monotonic() - last_write[0] > 0.5 or p.step == p.total:
            last_write[0] = time.monotonic()
            # "evaluating" happens twice; a phase of its own each, so the ETA restarts and the page can tell them apart.
            phase = f"{p.stage} training" if p.stage else p.phase
            fields: dict[str, Any] = {"state": p.phase, "phase": phase, "step": p.step, "total": p.total, "loss": p.loss}
            # The message changes with the phase only, so "Cancelling after the current step." stays up.
            if phase != last_phase[0] and not runs.cancel_requested(conn, job_id):
                fields["message"] = PHASE_MESSAGES.get(p.phase, "")
            try:
                runs.update(conn, job_id, **fields)
                last_phase[0] = phase
            except sqlite3.OperationalError:
                pass  # the assistant held the lock past the timeout: the next report writes it

    version = None
    try:
        runs.update(conn, job_id, state="preparing", phase="preparing", message=PHASE_MESSAGES["preparing"])
        planned = runs.planned_items(conn, job_id)
        skipped: list[int] = []
        loaded = {role: load_samples(conn, cfg, ids, skipped) for role, ids in planned.items()}
        train, heldout, flagged = loaded["train"], loaded["heldout"], loaded["regression"]
        # What each item said when the run read it: only items still saying it are marked trained.
        runs.record_items(conn, job_id, [(x.id, role, x.text) for role, group in loaded.items() for x in group] +
                          [(i, "skipped", None) for i in skipped])
        regression = flagged + load_regression(cfg)
        rehearsal, gate = ordinary.for_run(len(train), len(regression)) if cfg.training.builtin_speech else ([], [])
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
                           should_stop=lambda: runs.cancel_requested(conn, job_id),
                           rehearsal=loaded["rehearsal"] + rehearsal, ordinary=gate,
                           cache_dir=store.state_cache_dir(cfg.model.path))
        runs.update(conn, job_id, state="saving", phase="saving", step=0, total=1, message=PHASE_MESSAGES["saving"])
        candidate = trained
        if fmt == CTRANSLATE2:
            from stt.ct2_export import ct2_quantization, export_ct2

            candidate = work / "export"
            export_ct2(trained, candidate, ct2_quantization(cfg.model.path))
        if runs.cancel_requested(conn, job_id):  # asked during the export: still nothing has changed
            raise Cancelled("cancelled before saving")
        accepted, message = deploy_rule.verdict(result.clip_errors, cfg.training.wer_tolerance,
                                                cfg.training.deploy_confidence)
        if skipped:
            shown = ", ".join(map(str, skipped[:10])) + (" ..." if len(skipped) > 10 else "")
            message += (f" {len(skipped)} item(s) left out: no words, a transcript that is not text, audio that "
                        f"cannot be decoded or lasts over 30 s (ids {shown}); the editor says which.")
        metrics = {**dataclasses.asdict(result), "skipped_items": skipped, "format": fmt}
        # A version number from here on says which model this run made, even if a later step fails.
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
    except Cancelled:
        abort_transaction(conn)
        runs.finish(conn, job_id, "cancelled", "Cancelled: the deployed model was not changed.")
    except Exception as exc:  # the run's record must say why, whatever went wrong
        abort_transaction(conn)
        if version is not None and store.deployed_version(cfg.model.path) == version:
            # Failed after the swap (say the assistant held the lock too long): the model is live, its
            # items stay pending and are trained again next time; never claim nothing changed.
            runs.finish(conn, job_id, "failed", f"Training failed after deploying its model (version {version}): "
                        f"{exc}. Its items were not marked trained and stay pending.", deployed=1, version=version)
        else:
            runs.finish(conn, job_id, "failed", f"Training failed: {exc}. The deployed model was not changed.")
    finally:
        stop.set()
        shutil.rmtree(work, ignore_errors=True)
    try:
        store.prune(cfg.model.path, cfg.training.versions_kept)
    except OSError:
        pass  # an old version held open (Windows) is pruned after a later run instead
    finished = runs.get(conn, job_id)
    conn.close()
    return finished


def main(argv: list[str] | None = None) -> int:
    """The worker process: `python -m stt.worker --job ID --config-json JSON`, started by stt.jobs.start."""
    ap = argparse.ArgumentParser(description="Run one training job (started by the web app).")
    ap.add_argument("--job", required=True)
    ap.add_argument("--config-json", required=True)
    args = ap.parse_args(argv)
    cfg = load_config(environ={}, overrides=json.loads(args.config_json))
    finished = run(args.job, cfg)
    return 0 if finished and finished["state"] == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
