"""JSON API over the training items: health, stats, list, read, update, queue navigation."""
from __future__ import annotations

import base64
import json

from flask import Blueprint, Response, current_app, jsonify

from stt.models import disk_use
from stt.review import transcriber
from stt.runs import jobs, warm
from training.src import audio_meta, current, params
from training.src.db import get_db
from training.src.errors import ApiError
from utils import database, suggestion_rows, training_sets, transcript_style

bp = Blueprint("data", __name__, url_prefix="/api")


def _with_etag(item: dict, status: int = 200):
    response = jsonify(item)
    response.status_code = status
    response.set_etag(item["version"])
    return response


@bp.get("/health")
def health():
    cfg = current.config()
    jobs.heal(cfg)
    model_path = cfg.model.path
    problem = transcriber.load_problem(model_path)
    # present: a model that loads as far as can be told without loading it (see load_problem)
    model: dict = {"path": str(model_path), "present": problem is None}
    if problem is not None:
        model["message"] = problem
    body = {"status": "ok", "database": {"path": str(cfg.database.path), "ok": True}, "model": model}
    short = disk_use.shortage(model_path, cfg.database.path, cfg.database.keep_free_mb) or warm.refused(model_path)
    if short:  # the app has stopped writing there; the assistant may be next
        body["disk"] = {"ok": False, "message": short}
    try:
        database.ping(get_db())
    except Exception as exc:  # health must report, not fail
        body["status"] = "degraded"
        body["database"].update(ok=False, message=str(exc))
        return jsonify(body), 503
    return jsonify(body)


@bp.get("/data/stats")
def stats():
    t = current.config().training
    conn = get_db()
    counts = training_sets.stats(conn, t.heldout_fraction, t.heldout_min)
    if counts["unmeasured"]:  # read before counted as pending: a clip without audio is not pending
        audio_meta.measure_usable(current_app._get_current_object(), conn)
        counts = training_sets.stats(conn, t.heldout_fraction, t.heldout_min)
    return jsonify(counts)


@bp.get("/data/style")
def style():
    """How the transcripts to train on are written (capitals, punctuation, numbers): the model learns it."""
    return jsonify(transcript_style.summary(training_sets.trainable_texts(get_db())))


def _ranking(sort: str) -> suggestion_rows.Ranking | None:
    """For sort=disagreement|uncertainty: the deployed model's scores, most worth reviewing first, unscored last."""
    if sort not in suggestion_rows.RANKINGS:
        return None
    return suggestion_rows.Ranking(sort, transcriber.model_fingerprint(current.config().model.path))


@bp.get("/data")
def list_items():
    """Every matching item without audio; paged when `limit` is given, total in `X-Total-Count`."""
    limit = params.int_arg("limit", None, 1, 1000)
    sort = params.choice_arg("sort", "id", set(database.SORTABLE) | set(suggestion_rows.RANKINGS))
    text, total = database.list_items_json(
        get_db(),
        reviewed=params.bool_arg("reviewed"),
        trained=params.bool_arg("trained"),
        q=params.text_arg("q", params.MAX_QUERY_CHARS),
        sort=sort if sort in database.SORTABLE else "id",
        descending=params.choice_arg("order", "asc", {"asc", "desc"}) == "desc",
        limit=limit,
        offset=params.int_arg("offset", 0, 0, 10**12) or 0,
        ranking=_ranking(sort),
        no_speech=params.bool_arg("no_speech"),
        unusable=params.bool_arg("unusable"),
    )
    if limit is not None:
        # Durations of the shown page are measured off the request path; the
        # page asks again shortly for those still null.
        missing = [i["id"] for i in json.loads(text) if i["duration_s"] is None]
        audio_meta.fill_later(current_app._get_current_object(), missing)
    return Response(text, mimetype="application/json", headers={"X-Total-Count": str(total)})


@bp.get("/data/next")
def next_unreviewed():
    """The next unreviewed item, `{id: null}` when the queue is empty.

    By default the oldest after `after` (wrapping); with sort=disagreement or
    uncertainty the one the model scores most worth reviewing, other than `after`.
    """
    after = params.int_arg("after", 0, 0, 2**63 - 1)
    ranking = _ranking(params.choice_arg("sort", "id", {"id"} | set(suggestion_rows.RANKINGS)))
    if ranking is not None:
        return jsonify({"id": database.next_unreviewed_ranked(get_db(), ranking, after)})
    return jsonify({"id": database.next_unreviewed(get_db(), after)})


@bp.get("/data/<item:item_id>")
def get_item(item_id: int):
    """The item, its neighbours and its audio (base64); `?audio=0` leaves the audio out."""
    item = database.get_item(get_db(), item_id)
    conn = get_db()
    item.update(database.neighbours(conn, item_id))
    item.update(audio_meta.describe(current_app, conn, item_id))
    if params.bool_arg("audio") is not False:
        blob = database.get_audio(conn, item_id)
        item["audio"] = base64.b64encode(blob).decode("ascii")
    return _with_etag(item)


@bp.put("/data/<item:item_id>")
def update_item(item_id: int):
    body = params.json_object()
    transcript = params.transcript_field(body)
    is_reviewed = params.flag_field(body, "is_reviewed")
    regression = params.flag_field(body, "regression")
    no_speech = params.flag_field(body, "no_speech")
    if transcript is None and is_reviewed is None and regression is None and no_speech is None:
        raise ApiError(400, "invalid_body", "Send 'transcript', 'is_reviewed', 'regression' and/or 'no_speech'.")
    if no_speech and (training_sets.has_text(transcript) or is_reviewed is False):
        raise ApiError(400, "invalid_body", "A clip marked 'no_speech' has an empty transcript and is reviewed: "
                                            "send no words and no 'is_reviewed': false with it.")
    item = database.update_item(get_db(), item_id, transcript, is_reviewed, params.if_match(), regression,
                                no_speech)
    return _with_etag(item)
