"""The training worker: one run from its planned items to a deployed (or rejected) model.

Started as `python -m stt.runs.worker` by stt.runs.jobs.start (or run in-process by
`main.py train`). A run is six steps, and their order is what keeps a crash at
any moment harmless:

1. prepare       read the planned clips; record what each item said
2. train         fine-tune a Hugging Face copy; bring it back to the deployed format, then
                 measure it and the deployed model the way the assistant decodes (stt.runs.measuring)
3. keep_version  judge it (stt.finetune.deploy_rule) and keep it as a version, accepted or not
4. swap          if accepted: note the version on the run, then swap it in atomically
5. record        mark its items trained and the run done, in one transaction
6. tell_assistant if deployed: the notice beside the model and the on_deploy command (stt.runs.announce)

Until step 4 nothing the assistant uses has changed; after it, items are marked
only together with the record that says which model learned them.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stt.finetune import deploy_rule, modes, ordinary, timings
from stt.finetune.timings import PhaseClock
from stt.models import deploy_lock, disk_use, store
from stt.models.conversion import as_huggingface, in_format_of, working_copy_bytes
from stt.models.model_format import detect_format
from stt.runs import announce, liveness, measuring, model_import, run_space
from stt.runs.clips import load_regression, load_samples
from stt.runs.jobs import connect, work_dir
from utils import background, database, runs
from utils.config import Config, load_config
from utils.formatting import percent

HEARTBEAT_S = 5
# What the dashboard says under the progress bar in each phase of a run.
PHASE_MESSAGES = {"preparing": "Decoding the audio and computing features.",
                  "training": "Training on the reviewed recordings.",
                  "validating": "Checking the loss on speech it does not train on, to keep the best epoch.",
                  "blending": "Choosing how much of the change to keep.",
                  "evaluating": "Measuring word error rate before and after.", "saving": "Saving the model."}
# Phases of the training stage: the run's state stays "training" while the bar shows each of them.
TRAINING_PHASES = ("training", "validating", "blending")


@dataclasses.dataclass
class Batch:
    """The clips of one run by role, read once in prepare()."""
    train: list
    heldout: list
    regression: list      # the reviewer's checks and the regression folder: WER must not rise
    rehearsal: list       # earlier items and built-in ordinary speech, trained again
    gate: list            # built-in ordinary speech measured while the user has few checks of their own
    skipped: list[int]
    no_speech: list = dataclasses.field(default_factory=list)  # held-out clips marked without speech
    long_form: list = dataclasses.field(default_factory=list)  # the built-in long recording
    quiet: list = dataclasses.field(default_factory=list)      # built-in sounds without speech

    def watched(self) -> dict[str, list]:
        """What the run's loss watches to choose its epoch and blend (of the gate, an even spread)."""
        return {"heldout": self.heldout, "regression": self.regression, "ordinary": self.gate,
                "no_speech": self.no_speech}

    def measured(self) -> dict[str, list]:
        """What both models are heard on, the assistant's way, for the deploy rule."""
        return {"heldout": self.heldout, "regression": self.regression, "ordinary": self.gate,
                "long_form": self.long_form, "no_speech": self.no_speech, "quiet": self.quiet}


@dataclasses.dataclass
class Verdict:
    """Step 3's outcome: the kept version, whether it may be deployed, and what the run will say."""
    version: str
    accepted: bool
    message: str
    metrics: dict[str, Any]


def run(job_id: str, cfg: Config, on_progress: Callable[[Any], None] | None = None,
        imported: Path | None = None) -> dict[str, Any] | None:
    """Run one training job to its end, recording every phase; returns the finished run.

    With `imported` (a model folder), step 2 measures that model instead of training one
    (stt/runs/model_import.py); every other step is the same.
    """
    background.lower_this_process()  # the assistant keeps recording while we train (a click, import, terminal)
    conn = connect(cfg)
    try:
        # Held until the run has let go of the model: the app's sign that this worker lives (stt/runs/liveness.py).
        lock = liveness.hold(cfg.model.path)
    except liveness.WorkerRunning as exc:
        runs.finish(conn, job_id, "failed", f"{exc} This run did not start; the deployed model was not changed.")
    else:
        try:
            _steps(conn, cfg, job_id, on_progress, imported)
        finally:
            lock.release()
    finished = runs.get(conn, job_id)
    conn.close()
    return finished


def _steps(conn: sqlite3.Connection, cfg: Config, job_id: str, on_progress: Callable[[Any], None] | None,
           imported: Path | None) -> None:
    # The heart beats before torch is imported: that alone can take half a minute on a busy machine.
    runs.update(conn, job_id, pid=os.getpid())
    stop = _heartbeat(cfg, job_id)
    work = work_dir(cfg, job_id)
    quiet_libraries()
    from stt.finetune.engine import Cancelled

    store.repair(cfg.model.path)
    verdict: Verdict | None = None
    clock = PhaseClock()
    try:
        with clock("preparing"):
            batch = prepare(conn, cfg, job_id, importing=imported is not None)
        if imported is None:
            result, candidate = train_candidate(conn, cfg, job_id, batch, work, on_progress, clock)
        else:
            result, candidate = model_import.candidate(cfg, imported, work, clock)
        measured = measure(conn, cfg, job_id, batch, candidate, on_progress, clock)
        with clock("deploying"):
            verdict = keep_version(cfg, job_id, batch, result, measured, candidate)
        # The swap and the flags together: a rollback or an undo never sees one without the other.
        with deploy_lock.held(cfg.model.path):
            if verdict.accepted:
                with clock("deploying"):
                    swap(conn, cfg, job_id, verdict.version)
            # Recorded last so the deploy's own seconds are in it; the version keeps the times up to the judging.
            record(conn, job_id, batch, verdict, {**clock.seconds, **result.phase_seconds})
        if verdict.accepted:
            tell_assistant(conn, cfg, job_id)
    except Cancelled:
        runs.finish(conn, job_id, "cancelled", "Cancelled: the deployed model was not changed.")
    except Exception as exc:  # the run's record must say why, whatever went wrong
        _record_failure(conn, cfg, job_id, verdict.version if verdict else None, exc,
                        "Import" if imported is not None else "Training")
    finally:
        stop.set()
        shutil.rmtree(work, ignore_errors=True)
    try:
        store.prune(cfg.model.path, cfg.training.versions_kept)
    except OSError:
        pass  # an old version held open (Windows) is pruned after a later run instead
    disk_use.trim_state_cache(cfg.model.path, cfg.training.cache_limit_mb)


def prepare(conn: sqlite3.Connection, cfg: Config, job_id: str, importing: bool = False) -> Batch:
    """Step 1: read the planned clips and note what each item said, since only items still saying
    it are marked trained at the end."""
    from stt.finetune.engine import pick_device

    runs.update(conn, job_id, state="preparing", phase="preparing", message=PHASE_MESSAGES["preparing"])
    skipped: list[int] = []
    digests: dict[int, str] = {}
    loaded = {role: load_samples(conn, cfg, ids, skipped, digests)
              for role, ids in runs.planned_items(conn, job_id).items()}
    runs.record_items(conn, job_id, [(x.id, role, x.text, digests.get(x.id))
                                     for role, group in loaded.items() for x in group] +
                      [(i, "skipped", None) for i in skipped])
    # Measured clips without speech are judged by whether the model writes anything on them, not by WER.
    no_speech = [x for x in loaded["heldout"] + loaded["regression"] if not x.text]
    heldout = [x for x in loaded["heldout"] if x.text]
    regression = [x for x in loaded["regression"] if x.text] + load_regression(cfg)
    builtin, gate = ordinary.for_run(len(loaded["train"]), len(regression)) if cfg.training.builtin_speech \
        else ([], [])
    checks = measuring.builtin_checks() if cfg.training.builtin_speech else {}
    if not loaded["train"] and not importing:
        raise RuntimeError("none of the pending items has decodable audio and a transcript")
    # The history shows what ran ("adapt"), not what was asked for ("auto").
    runs.update(conn, job_id, items=len(loaded["train"]), heldout_items=len(loaded["heldout"]),
                mode=model_import.MODE if importing else modes.resolve(cfg.training.mode, pick_device()).name)
    return Batch(loaded["train"], heldout, regression, loaded["rehearsal"] + builtin, gate, skipped, no_speech,
                 checks.get("long_form", []), checks.get("quiet", []))


def train_candidate(conn: sqlite3.Connection, cfg: Config, job_id: str, batch: Batch, work: Path,
                    on_progress: Callable[[Any], None] | None, clock: PhaseClock) -> tuple[Any, Path]:
    """Step 2: fine-tune in the run's scratch folder; returns the engine's result and the new
    model in the deployed model's own format. Nothing outside `work` changes."""
    from stt.finetune.engine import Cancelled, fine_tune

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with clock("converting"):
        run_space.ensure(cfg, working_copy_bytes(cfg.model.path), "the run's working copy of the model")
        base = as_huggingface(cfg.model.path, work / "base")
    result = fine_tune(base, work / "trained", batch.train, batch.watched(), cfg.training,
                       progress=_progress_writer(conn, job_id, on_progress),
                       should_stop=lambda: runs.cancel_requested(conn, job_id), rehearsal=batch.rehearsal,
                       cache_dir=store.state_cache_dir(cfg.model.path), language=cfg.assistant.language,
                       keep_free_mb=cfg.database.keep_free_mb)
    runs.update(conn, job_id, state="saving", phase="saving", step=0, total=1, message=PHASE_MESSAGES["saving"])
    with clock("exporting"):
        run_space.ensure(cfg, run_space.export_bytes(cfg.model.path), "the trained model's export")
        candidate = in_format_of(cfg.model.path, work / "trained", work / "export")
    if runs.cancel_requested(conn, job_id):  # asked during the export: still nothing has changed
        raise Cancelled("cancelled before saving")
    return result, candidate


def measure(conn: sqlite3.Connection, cfg: Config, job_id: str, batch: Batch, candidate: Path,
            on_progress: Callable[[Any], None] | None, clock: PhaseClock) -> measuring.Measurement:
    """Step 2's end: the deployed model and the candidate heard the assistant's way on every measured set."""
    from stt.finetune.engine import Cancelled, Progress

    write = _progress_writer(conn, job_id, on_progress)

    def report(stage: str, done: int, total: int) -> None:
        write(Progress("evaluating", done, total, stage=stage))
        if runs.cancel_requested(conn, job_id):
            raise Cancelled("cancelled while measuring")

    return measuring.measure(cfg, batch.measured(), candidate, report, clock)


def keep_version(cfg: Config, job_id: str, batch: Batch, result: Any, measured: measuring.Measurement,
                 candidate: Path) -> Verdict:
    """Step 3: judge the new model and keep it as a version, accepted or not."""
    heard = measured.metrics()
    accepted, message = deploy_rule.verdict(heard["clip_errors"], cfg.training.wer_tolerance,
                                            cfg.training.deploy_confidence, heard["faults"])
    if 0 < result.best_epoch < result.epochs_run:
        message += (f" Kept epoch {result.best_epoch} of the {result.epochs_run} trained: "
                    + ("the loss on the held-out and check speech no longer fell after it, so the run stopped "
                       "there (the stop before memorisation)." if result.epochs_run < result.max_epochs else
                       "every configured epoch ran, and the loss on the held-out and check speech was lowest "
                       "after that one."))
    if result.blend < 1:
        message += (f" Kept {percent(result.blend, 0)} of the change from the deployed model: on the held-out and "
                    "check speech, that blend did better than the whole change.")
    if batch.skipped:
        shown = ", ".join(map(str, batch.skipped[:10])) + (" ..." if len(batch.skipped) > 10 else "")
        message += (f" {len(batch.skipped)} item(s) left out: no words, a transcript that is not text, audio "
                    f"that cannot be decoded or lasts over 30 s (ids {shown}); the editor says which.")
    metrics = {**dataclasses.asdict(result), **heard, "skipped_items": batch.skipped,
               "format": detect_format(cfg.model.path), "worse_sets": deploy_rule.worse_sets(heard["clip_errors"]),
               "roles": measuring.roles(result.chose, heard["judged"])}
    # A version number from here on says which model this run made, even if a later step fails.
    version = store.add_version(cfg.model.path, candidate, {"job_id": job_id, "accepted": accepted, **metrics},
                                cfg.database.keep_free_mb)
    return Verdict(version, accepted, message, metrics)


def swap(conn: sqlite3.Connection, cfg: Config, job_id: str, version: str) -> None:
    """Step 4: the version is noted on the run before the swap, so a crash right after it is
    reported as "deployed, items pending" rather than "nothing changed"."""
    runs.update(conn, job_id, version=version)
    store.deploy(cfg.model.path, version, cfg.database.keep_free_mb)


def record(conn: sqlite3.Connection, job_id: str, batch: Batch, verdict: Verdict,
           phase_seconds: dict[str, float] | None = None) -> None:
    """Step 5: mark the items the deployed model learned and finish the run, in one transaction."""
    message = verdict.message
    with database.transaction(conn):
        marked = runs.mark_trained(conn, job_id) if verdict.accepted else 0
        if verdict.accepted and marked < len(batch.train):
            message += _not_marked(conn, job_id, len(batch.train) - marked)
        runs.finish(conn, job_id, "done", message, deployed=int(verdict.accepted), version=verdict.version,
                    step=1, total=1, result_json=json.dumps({**verdict.metrics, "marked_trained": marked,
                                                             "phase_seconds": timings.ordered(phase_seconds or {})}))


def tell_assistant(conn: sqlite3.Connection, cfg: Config, job_id: str) -> None:
    """Step 6, once the run is recorded: the notice file and the on_deploy command (stt/runs/announce.py).
    How it went is kept with the run; a failure is said there and never undoes the deploy."""
    told = announce.announce(cfg)
    if told is not None:
        runs.add_to_result(conn, job_id, {"assistant_told": told}, "" if told["ok"] else told["message"])


def _not_marked(conn: sqlite3.Connection, job_id: str, count: int) -> str:
    """Why `count` trained items were not marked trained: edited (transcript or audio) since, pending again;
    or un-reviewed."""
    unreviewed = runs.unreviewed_since(conn, job_id)
    edited = count - unreviewed
    parts = ([f"{edited} item(s) were edited during training (transcript or audio) and stay pending"]
             if edited else []) + \
        ([f"{unreviewed} item(s) were marked unreviewed during training and wait for review"] if unreviewed else [])
    return " " + "; ".join(parts) + "."


def _record_failure(conn: sqlite3.Connection, cfg: Config, job_id: str, version: str | None, exc: Exception,
                    what: str = "Training") -> None:
    if version is not None and store.deployed_version(cfg.model.path) == version:
        # Failed after the swap (say the assistant held the lock too long): the model is live, its
        # items stay pending and are trained again next time; never claim nothing changed.
        runs.finish(conn, job_id, "failed", f"{what} failed after deploying its model (version {version}): "
                    f"{exc}. Its items were not marked trained and stay pending.", deployed=1, version=version)
    else:
        runs.finish(conn, job_id, "failed", f"{what} failed: {exc}. The deployed model was not changed.")


def _heartbeat(cfg: Config, job_id: str) -> threading.Event:
    """Beat every few seconds until the returned event is set: a silent worker is a dead worker
    to the reaper, even during a long step."""
    stop = threading.Event()

    def beat() -> None:
        beat_conn = connect(cfg)
        while not stop.wait(HEARTBEAT_S):
            try:
                runs.update(beat_conn, job_id)
            except sqlite3.Error:
                pass  # the assistant held the lock past the timeout: the next beat will do
        beat_conn.close()

    threading.Thread(target=beat, daemon=True).start()
    return stop


def quiet_libraries() -> None:
    """The run reports its own progress; library progress bars and deprecation chatter only bury it."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def _progress_writer(conn: sqlite3.Connection, job_id: str,
                     on_progress: Callable[[Any], None] | None) -> Callable[[Any], None]:
    """The engine's progress, written to the run at most twice a second (and at each phase's end)."""
    last_write, last_phase = [0.0], [""]

    def progress(p: Any) -> None:
        if on_progress:
            on_progress(p)
        if time.monotonic() - last_write[0] <= 0.5 and p.step != p.total:
            return
        last_write[0] = time.monotonic()
        # "evaluating" happens twice; a phase of its own each, so the ETA restarts and the page can tell them apart.
        phase = f"{p.stage} training" if p.stage else p.phase
        state = "training" if p.phase in TRAINING_PHASES else p.phase
        fields: dict[str, Any] = {"state": state, "phase": phase, "step": p.step, "total": p.total, "loss": p.loss}
        # The message changes with the phase only, so "Cancelling after the current step." stays up.
        if phase != last_phase[0] and not runs.cancel_requested(conn, job_id):
            fields["message"] = PHASE_MESSAGES.get(p.phase, "")
        try:
            runs.update(conn, job_id, **fields)
            last_phase[0] = phase
        except sqlite3.OperationalError:
            pass  # the assistant held the lock past the timeout: the next report writes it

    return progress


def main(argv: list[str] | None = None) -> int:
    """The worker process: `python -m stt.runs.worker --job ID --config-json JSON`, started by
    stt.runs.jobs.start."""
    ap = argparse.ArgumentParser(description="Run one training job (started by the web app).")
    ap.add_argument("--job", required=True)
    ap.add_argument("--config-json", required=True)
    args = ap.parse_args(argv)
    cfg = load_config(environ={}, overrides=json.loads(args.config_json))
    finished = run(args.job, cfg)
    return 0 if finished and finished["state"] == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
