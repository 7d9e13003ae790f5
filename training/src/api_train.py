"""Training endpoints: start, watch and cancel runs; list and roll back model versions.

The heavy lifting happens in a worker process (stt.jobs); these views only
read and write the run records, so they stay fast and never import torch.
"""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from stt import jobs, runs, store
from stt.model_format import ModelFormatError, detect_format
from training.src import params
from training.src.db import get_db
from training.src.errors import ApiError

bp = Blueprint("train", __name__, url_prefix="/api")


@bp.record_once
def _setup(state) -> None:
    cfg = state.app.config["S2S"]
    conn = jobs.connect(cfg)
    try:
        store.repair(cfg.model.path)
        jobs.reap(conn)  # runs that died while the app was down show as failed
    finally:
        conn.close()


def _cfg():
    return current_app.config["S2S"]


def _conn():
    conn = get_db()
    runs.init_tables(conn)
    jobs.reap(conn)
    return conn


def _raise(exc: jobs.JobError):
    raise ApiError(exc.status, exc.error, exc.message, **exc.extra) from None


@bp.post("/train")
def start_training():
    """Start fine-tuning on every pending item; the optional body may choose the mode."""
    mode = None
    if request.get_data(cache=True).strip():
        body = params.json_object()
        mode = body.get("mode")
        if mode is not None and mode not in ("decoder", "full", "lora", "auto"):
            raise ApiError(400, "invalid_field", "'mode' must be one of decoder, full, lora, auto.", field="mode")
    try:
        started = jobs.start(_cfg(), mode)
    except jobs.JobError as exc:
        _raise(exc)
    return jsonify(started), 202


@bp.get("/train/status")
def status():
    run = runs.latest(_conn())
    return jsonify(run or {"state": "idle"})


@bp.get("/train/runs")
def history():
    return jsonify(runs.history(_conn()))


@bp.get("/train/<job_id>")
def one_run(job_id: str):
    run = runs.get(_conn(), job_id)
    if run is None:
        raise ApiError(404, "not_found", f"No training run {job_id}.")
    return jsonify(run)


@bp.post("/train/<job_id>/cancel")
def cancel(job_id: str):
    try:
        return jsonify(jobs.cancel(_cfg(), job_id)), 202
    except jobs.JobError as exc:
        _raise(exc)


@bp.get("/model")
def model_info():
    path = _cfg().model.path
    try:
        fmt, present = detect_format(path), True
    except ModelFormatError:
        fmt, present = None, path.is_dir() and any(path.iterdir())
    return jsonify({"path": str(path), "format": fmt, "present": present,
                    "version": store.deployed_version(path), "versions": store.list_versions(path)})


@bp.post("/model/rollback")
def rollback():
    body = params.json_object()
    version = body.get("version")
    if not isinstance(version, str) or not version:
        raise ApiError(400, "invalid_field", "'version' must name a kept version (see GET /api/model).", field="version")
    if runs.active(_conn()):
        raise ApiError(409, "job_running", "Wait for the training run to finish before rolling back.")
    if version not in {v["version"] for v in store.list_versions(_cfg().model.path)}:
        raise ApiError(404, "not_found", f"There is no kept model version {version!r}.")
    try:
        store.deploy(_cfg().model.path, version)
    except store.StoreError as exc:
        raise ApiError(409, "rollback_failed", str(exc)) from None
    return jsonify({"success": True, "version": version, "message": f"Version {version} is deployed."})
