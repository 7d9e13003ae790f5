"""Model-assisted review: what the deployed model hears in a clip, for one item or all unreviewed ones."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from stt.models.model_format import ModelFormatError
from stt.review import suggestions
from stt.review.transcriber import ModelLoadError, check_model, model_fingerprint
from stt.runs import jobs
from training.src import current
from training.src.db import get_db
from training.src.errors import ApiError
from utils import suggestion_rows

bp = Blueprint("suggest", __name__, url_prefix="/api")
JOB_KEY = "s2s_score_job"


def _job() -> suggestions.ScoreJob:
    return current_app.extensions[JOB_KEY]


def _model_error(exc: Exception) -> ApiError:
    """409: the request is fine, but the model folder the server points at is not usable."""
    path = current.config().model.path
    if isinstance(exc, ModelFormatError) and (not path.is_dir() or not any(path.iterdir())):
        # One short line: the editor shows it where the suggestion would be (the full reason is in model info).
        return ApiError(409, "no_model", f"No model yet at {path}: add one with `python main.py model download` "
                                         "or `model import`.")
    code = "model_load_failed" if isinstance(exc, ModelLoadError) else "unknown_model_format"
    return ApiError(409, code, str(exc))


@bp.post("/data/<item:item_id>/transcribe")
def transcribe(item_id: int):
    """The current model's transcript of the item (cached per model) and its disagreement with the stored one."""
    jobs.heal(current.config())
    try:
        return jsonify(suggestions.suggest(current.config(), get_db(), item_id))
    except (ModelFormatError, ModelLoadError) as exc:
        raise _model_error(exc) from None


@bp.post("/suggestions/score")
def start_scoring():
    """Transcribe every unreviewed item the current model has not heard yet, in the background."""
    cfg = current.config()
    jobs.heal(cfg)
    try:
        check_model(cfg.model.path)  # refuse now rather than fail in the thread
    except ModelFormatError as exc:
        raise _model_error(exc) from None
    if not _job().start(cfg):
        raise ApiError(409, "job_running", "Scoring is already running; watch GET /api/suggestions/score.",
                       progress=_job().progress())
    return jsonify(_job().progress()), 202


def rescore_after_deploy() -> None:
    """Called where the dashboard polls: a model deployed since the last look starts scoring the backlog."""
    _job().after_deploy(current.config())


def stop_for_training() -> None:
    """A run needs the cores, and the model it may deploy makes this scoring stale: the deploy scores again."""
    _job().cancel("Stopped for the training run (it needs the cores; a model it deploys scores the backlog "
                  "again by itself)")


@bp.get("/suggestions/score")
def scoring_progress():
    """The job's progress, and how many unreviewed transcripts the deployed model would write differently."""
    rescore_after_deploy()
    fingerprint = model_fingerprint(current.config().model.path)
    scored, differ = suggestion_rows.disagreement_counts(get_db(), fingerprint)
    return jsonify({**_job().progress(), "scored": scored, "differ": differ})


@bp.post("/suggestions/score/cancel")
def cancel_scoring():
    if not _job().cancel():
        raise ApiError(409, "not_running", "No scoring job is running.", progress=_job().progress())
    return jsonify(_job().progress()), 202
