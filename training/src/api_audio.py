"""An item's audio as a playable file (with HTTP Range for seeking) and as waveform peaks."""
from __future__ import annotations

import io

from flask import Blueprint, current_app, jsonify, send_file

from training.src import params
from training.src.db import get_db
from training.src.errors import ApiError
from utils import audio, database

bp = Blueprint("audio", __name__, url_prefix="/api/data")


def _blob(item_id: int) -> bytes:
    try:
        return database.get_audio(get_db(), item_id)
    except database.NotFound:
        raise ApiError(404, "not_found", f"No item with id {item_id}.") from None


def _undecodable(item_id: int, exc: audio.AudioError) -> ApiError:
    return ApiError(422, "undecodable_audio",
                    f"The audio of item {item_id} cannot be played: {exc}. The transcript can still be edited.")


@bp.get("/<item:item_id>/audio")
def audio_file(item_id: int):
    try:
        data, mime = audio.playable(_blob(item_id), current_app.config["S2S"].audio)
    except audio.AudioError as exc:
        raise _undecodable(item_id, exc) from None
    ext = mime.split("/")[1].replace("mpeg", "mp3")
    # conditional=True makes Werkzeug answer Range requests with 206, which
    # browsers need to seek inside the clip.
    response = send_file(io.BytesIO(data), mimetype=mime, conditional=True,
                         download_name=f"item-{item_id}.{ext}", etag=False)
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/<item:item_id>/peaks")
def peaks(item_id: int):
    """Per-bucket peak amplitudes for the editor's waveform; `buckets` sets the resolution."""
    buckets = params.int_arg("buckets", 800, 1, 10_000)
    try:
        samples, rate = audio.decode(_blob(item_id), current_app.config["S2S"].audio)
    except audio.AudioError as exc:
        raise _undecodable(item_id, exc) from None
    return jsonify({
        "peaks": audio.peaks(samples, buckets),
        "duration_s": round(len(samples) / rate, 3),
        "sample_rate": rate,
    })
