"""An item's audio as a playable file (with HTTP Range for seeking) and as waveform peaks."""
from __future__ import annotations

import io

from flask import Blueprint, jsonify, send_file

from training.src import current, params
from training.src.db import get_db
from utils import audio, database

bp = Blueprint("audio", __name__, url_prefix="/api/data")


@bp.get("/<item:item_id>/audio")
def audio_file(item_id: int):
    data, mime = audio.playable(database.get_audio(get_db(), item_id), current.config().audio)
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
    samples, rate = audio.decode(database.get_audio(get_db(), item_id), current.config().audio)
    return jsonify({
        "peaks": audio.peaks(samples, buckets),
        "duration_s": round(len(samples) / rate, 3),
        "sample_rate": rate,
    })
