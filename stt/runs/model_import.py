"""A Whisper model trained elsewhere (say on a GPU, on an export of this app's clips), brought in as a new
version and deployed only by the rule every training run meets (stt/finetune/deploy_rule.py): measured
against the deployed model, clip by clip, on the held-out items, the regression checks and the built-in
ordinary speech.

It is a run like any other, of mode "import" with nothing trained on, recorded in the same history
and carried out by the same worker steps (stt/runs/worker.py): brought into the deployed model's format
here, then heard the assistant's way beside the deployed model (stt/runs/measuring.py), so what is
judged is the very folder that would be deployed, and a crash at any moment is as harmless as in a
training run. Items keep their trained flags: what the imported model learned is not
known here (a model trained on an export learned its train split, trained items included).
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from stt.finetune.timings import PhaseClock
from stt.models import model_files, store
from stt.models.conversion import as_huggingface, in_format_of
from stt.models.model_format import ModelFormatError, detect_format
from stt.runs import jobs
from stt.runs.jobs import JobError, connect
from utils import database, disk, runs, training_sets
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
    try:  # a copy, its Hugging Face form and its export in the deployed format, beside the model
        disk.ensure_room(cfg.model.path.parent, 3 * disk.folder_size(folder), f"importing {folder}",
                         f"Delete old versions in {store.versions_dir(cfg.model.path)} or free space on that disk.",
                         cfg.database.keep_free_mb)
    except disk.DiskShort as exc:
        raise JobError("disk_full", str(exc)) from None
    jobs.heal(cfg)
    conn = connect(cfg)
    try:
        jobs.settle(conn, cfg)  # a run that died must not block the import, as it would not block Train
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


def candidate(cfg: Config, folder: Path, work: Path, clock: PhaseClock) -> tuple[Any, Path]:
    """The worker's step 2 for an import: the imported model in the deployed model's format, for the worker
    to measure against the deployed one as it measures a trained model. Nothing outside `work` changes;
    the user's folder is only read."""
    from stt.finetune.engine import EngineResult, load_model, pick_device

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    device = pick_device()
    started = time.perf_counter()
    source = work / "source"
    # Only the model's own files; the version's record is written into the copy, never into the user's folder.
    model_files.copy_model(folder, source)
    with clock("converting"):
        imported_dir = as_huggingface(source, work / "imported")
    with clock("loading"):
        load_model(imported_dir, device)  # one that cannot load is found out before measuring anything
    with clock("exporting"):
        exported = in_format_of(cfg.model.path, imported_dir, work / "export")
    result = EngineResult(mode=MODE, device=device, max_epochs=0, steps=0, train_items=0, train_loss=None,
                          train_seconds=time.perf_counter() - started)
    return result, exported
