"""A Whisper model trained elsewhere (say on a GPU, on an export of this app's clips), brought in as a new
version and deployed only by the rule every training run meets (stt/finetune/deploy_rule.py): measured
against the deployed model, clip by clip, on the held-out items, the regression checks and the built-in
ordinary speech.

It is a run like any other, of mode "import" with nothing trained on, recorded in the same history
and carried out by the same worker steps (stt/runs/worker.py), so a crash at any moment is as
harmless as in a training run. Items keep their trained flags: what the imported model learned is not
known here (a model trained on an export learned its train split, trained items included).
"""
from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stt.finetune.deploy_rule import with_words
from stt.finetune.metrics import wer_of
from stt.finetune.timings import PhaseClock
from stt.models import model_files
from stt.models.conversion import as_huggingface, in_format_of
from stt.models.model_format import ModelFormatError, detect_format
from stt.runs import jobs
from stt.runs.jobs import JobError, connect
from utils import database, runs, training_sets
from utils.config import Config

MODE = "import"


def start_record(cfg: Config, folder: Path) -> dict[str, Any]:
    """Check the folder and that nothing else runs, and record the import as a queued run."""
    try:
        detect_format(folder)
        model_files.model_files(folder)
        model_files.check_shapes(folder)
    except ModelFormatError as exc:
        raise JobError("not_a_model", f"Nothing to import: {exc}") from None
    jobs.heal(cfg)
    conn = connect(cfg)
    try:
        jobs.reap(conn, cfg)  # a run that died must not block the import, as it would not block Train
        with database.transaction(conn):
            jobs.check_can_start(conn, cfg, "No deployed model to compare with")
            heldout = training_sets.heldout_ids(conn, cfg.training.heldout_fraction, cfg.training.heldout_min)
            regression = training_sets.regression_ids(conn)
            job_id = runs.create(conn, MODE, 0, len(heldout))
            training_sets.keep_heldout(conn, heldout)
            runs.record_items(conn, job_id, [(i, "heldout", None) for i in heldout] +
                              [(i, "regression", None) for i in regression])
    finally:
        conn.close()
    return {"job_id": job_id, "message": f"Importing {folder}: measuring it against the deployed model on "
                                         f"{len(heldout)} held-out items and {len(regression)} regression checks."}


def measure(cfg: Config, batch: Any, folder: Path, work: Path, progress: Callable[[Any], None],
            should_stop: Callable[[], bool] = lambda: False) -> tuple[Any, Path]:
    """The worker's step 2 for an import: both models measured on the same clips, and the imported one
    in the deployed model's format. Nothing outside `work` changes; the user's folder is only read."""
    from stt.finetune.engine import Cancelled, EngineResult, Progress, load_model, pick_device, score

    def report(p: Any) -> None:
        progress(p)
        if should_stop():
            raise Cancelled("the import was cancelled")

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    device = pick_device()
    started = time.perf_counter()
    clock = PhaseClock()
    source = work / "source"
    # Only the model's own files; the version's record is written into the copy, never into the user's folder.
    model_files.copy_model(folder, source)
    with clock("converting"):
        imported_dir = as_huggingface(source, work / "imported")
    with clock("loading"):
        load_model(imported_dir, device)  # one that cannot load is found out before measuring anything
    measured = {"heldout": batch.heldout, "regression": batch.regression, "ordinary": batch.gate,
                "no_speech": batch.silent}
    total = 2 * sum(len(group) for group in measured.values())
    scores: dict[str, dict[str, Any]] = {}
    done = 0
    for stage, model_dir in (("before", None), ("after", imported_dir)):
        if model_dir is None:
            with clock("converting"):
                model_dir = as_huggingface(cfg.model.path, work / "base")
        with clock("loading"):
            processor, model = load_model(model_dir, device)
        with clock(f"measuring {stage}"):
            for name, group in measured.items():
                if group:
                    base = done
                    scores.setdefault(name, {})[stage] = score(
                        model, processor, group, device, cfg.training.batch_size,
                        lambda p, base=base, stage=stage: report(Progress("evaluating", base + p.step, total,
                                                                          stage=stage)))
                    done += len(group)
        del model
    with clock("exporting"):
        candidate = in_format_of(cfg.model.path, model_dir, work / "export")

    def wer(name: str, stage: str) -> float | None:
        return wer_of(scores[name][stage]) if name in scores else None

    result = EngineResult(
        mode=MODE, device=device, epochs=0, steps=0, train_items=0, train_loss=None,
        wer_before=wer("heldout", "before"), wer_after=wer("heldout", "after"),
        regression_wer_before=wer("regression", "before"), regression_wer_after=wer("regression", "after"),
        ordinary_wer_before=wer("ordinary", "before"), ordinary_wer_after=wer("ordinary", "after"),
        train_seconds=time.perf_counter() - started, clip_errors=scores,
        no_speech_before=with_words(scores["no_speech"]["before"]) if "no_speech" in scores else None,
        no_speech_after=with_words(scores["no_speech"]["after"]) if "no_speech" in scores else None,
        phase_seconds=clock.rounded())
    return result, candidate
