"""Find and replace across transcripts: preview every change, apply all or the ticked ones as one batch,
undo the batch later (utils/bulk.py holds the rules)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from stt.models import deploy_lock, store
from training.src import current, params
from training.src.db import get_db
from training.src.errors import ApiError
from utils import bulk

bp = Blueprint("bulk", __name__, url_prefix="/api")
# Enough to read through, and a bounded answer (a thousand long transcripts would be megabytes): the
# total and the tag cover every match.
PREVIEW_SHOWN = 1000
PREVIEW_CHARS = 1_000_000
MAX_FIND_CHARS = 200


def _search(body: dict[str, Any]) -> tuple[bulk.Search, str]:
    find = params.string_field(body, "find", MAX_FIND_CHARS)
    if not find or not find.strip():
        raise ApiError(400, "invalid_field", "'find' must hold the word or phrase to look for.", field="find")
    replacement = params.string_field(body, "replace", params.MAX_TRANSCRIPT_CHARS)
    if replacement is None:
        raise ApiError(400, "invalid_field", "'replace' must be a string (it may be empty).", field="replace")
    flags = {name: params.flag_field(body, name) for name in ("whole_word", "match_case", "include_reviewed")}
    return bulk.Search(find, whole_word=flags["whole_word"] is not False, match_case=flags["match_case"] is True,
                       include_reviewed=flags["include_reviewed"] is True), replacement


@bp.post("/bulk/preview")
def preview():
    search, replacement = _search(params.json_object())
    matches = bulk.preview(get_db(), search, replacement)
    shown, size = [], 0
    for match in matches[:PREVIEW_SHOWN]:
        size += len(match["transcript"]) + len(match["replaced"])
        if shown and size > PREVIEW_CHARS:
            break
        shown.append(match)
    return jsonify({"total": len(matches), "tag": bulk.tag(matches), "matches": shown})


def _versions(body: dict[str, Any]) -> dict[int, str] | None:
    """`items: [{id, version}]` for the ticked matches (they win over `all`), or `all: true` for every match."""
    items = body.get("items")
    everything = params.flag_field(body, "all")  # checked even beside `items`: a bad field is refused, not ignored
    if "items" not in body and everything:  # `items: null` is not "left out": the schema says an array
        return None
    if not isinstance(items, list) or not all(
            isinstance(i, dict) and type(i.get("id")) is int and isinstance(i.get("version"), str) for i in items):
        raise ApiError(400, "invalid_field", "Send 'items': [{id, version}, ...] from the preview, or 'all': true.",
                       field="items")
    return {i["id"]: i["version"] for i in items}


@bp.post("/bulk/apply")
def apply():
    body = params.json_object()
    search, replacement = _search(body)
    return jsonify(bulk.apply(get_db(), search, replacement, _versions(body), params.if_match()))


@bp.post("/bulk/<batch_id>/undo")
def undo(batch_id: str):
    # The trained flags after an undo follow what the deployed model learned, as after a deploy: its lineage
    # read inside the undo's transaction, with no deploy or rollback between that and the flags.
    path = current.config().model.path
    try:
        with deploy_lock.held(path):
            return jsonify(bulk.undo(get_db(), batch_id, lambda: store.lineage(path)))
    except deploy_lock.DeployBusy as exc:
        raise ApiError(409, "model_busy", str(exc)) from None


@bp.get("/bulk")
def batches():
    return jsonify(bulk.batches(get_db()))
