"""Training endpoints: start, watch and cancel runs; list and roll back model versions.

The heavy lifting happens in a worker process (stt.runs.worker, started by stt.runs.jobs); these views only
read and write the run records, so they stay fast and never import torch.
"""
from __future__ import annotations

import sqlite3
import threading

from flask import Blueprint, jsonify, request

from stt.models import disk_use, model_info, store
from stt.models.model_format import ModelFormatError, detect_format
from stt.runs import announce, jobs
from training.src import api_suggest, current, params
from training.src.db import get_db
from training.src.errors import ApiError
from utils import rollbacks, runs
from utils.config import TRAINING_MODES as MODES

bp = Blueprint("train", __name__, url_prefix="/api")
# Starting a run and rolling back both change what sits at the model path (a new worker
# repairs the store as it starts): one at a time within this server.
_model_lock = threading.Lock()


def _cfg():
    return current.config()


def _conn() -> sqlite3.Connection:
    conn = get_db()
    jobs.reap(conn, _cfg())
    return conn


@bp.post("/train")
def start_training():
    """Start fine-tuning on every pending item; the optional body may choose the mode."""
    mode = None
    if request.get_data(cache=True).strip():
        body = params.json_object()
        mode = body.get("mode")
        # null is refused as the schema says: leaving "mode" out is how to take the configured one.
        if "mode" in body and mode not in MODES:
            raise ApiError(400, "invalid_field", f"'mode' must be one of {', '.join(MODES)}.", field="mode")
    with _model_lock:
        started = jobs.start(_cfg(), mode)
    api_suggest.stop_for_training()
    return jsonify(started), 202


@bp.get("/train/status")
def status():
    run = runs.latest(_conn())
    if run and run["state"] in runs.FINISHED:
        api_suggest.rescore_after_deploy()
    return jsonify(run or {"state": "idle"})


@bp.get("/train/runs")
def history():
    return jsonify(runs.history(_conn()))


@bp.get("/train/<job_id>")
def one_run(job_id: str):
    run = runs.get(_conn(), job_id)
    if run is None:
        raise jobs.JobError("not_found", f"No training run {job_id}.")
    return jsonify(run)


@bp.post("/train/<job_id>/cancel")
def cancel(job_id: str):
    return jsonify(jobs.cancel(_cfg(), job_id)), 202


@bp.get("/model")
def model_state():
    jobs.heal(_cfg())
    path = _cfg().model.path
    try:
        fmt, present = detect_format(path), True
    except ModelFormatError:
        fmt, present = None, path.is_dir() and any(path.iterdir())
    return jsonify({"path": str(path), "name": model_info.name_of(path) if fmt else None, "format": fmt,
                    "present": present,
                    "version": store.deployed_version(path), "versions": store.list_versions(path),
                    **announce.current(path)})


@bp.get("/model/disk")
def model_disk():
    """What the model, its kept versions and its rebuildable caches take, and what its disk has free."""
    return jsonify(disk_use.usage(_cfg().model.path))


@bp.delete("/model/caches")
def clear_caches():
    with _model_lock:
        return jsonify(jobs.clear_caches(_cfg()))


@bp.get("/model/rollbacks")
def rollback_history():
    """Kept versions deployed by hand, newest first: the history shows them between the runs."""
    return jsonify(rollbacks.history(get_db()))


@bp.post("/model/rollback")
def rollback():
    body = params.json_object()
    version = body.get("version")
    if not isinstance(version, str) or not version:
        raise ApiError(400, "invalid_field", "'version' must name a kept version (see GET /api/model).",
                       field="version")
    with _model_lock:
        return jsonify(jobs.rollback(_cfg(), version))
