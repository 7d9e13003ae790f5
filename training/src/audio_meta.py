"""Audio facts (format, duration, sample rate) for the pages: measured in the request for one item, and
for a listing on a background thread instead (utils/audio_facts.py measures and caches them)."""
from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable
from typing import Any

from flask import Flask

from training.src import current
from utils import audio_facts, audio_meta_rows, database, training_sets

log = logging.getLogger(__name__)
_filling = threading.Lock()
# Usable items whose audio the stats measure in the request (a header read and a cache write each, about
# a millisecond); more than that, after an import of reviewed clips, are measured off it and counted on a
# later look (the stats' `unmeasured` says how many wait).
MEASURE_IN_REQUEST = 100


def describe(app: Flask, conn: sqlite3.Connection, item_id: int) -> dict[str, Any]:
    """`audio_mime`, `duration_s`, `sample_rate` and `audio_error` (None when the audio is fine)."""
    length = database.audio_length(conn, item_id)
    row = audio_meta_rows.cached(conn, item_id, length)
    if row is None:
        row = audio_facts.measure(conn, item_id, length, current.config(app).audio)
    return {
        "audio_mime": row["mime"],
        "duration_s": row["duration_s"],
        "sample_rate": row["sample_rate"],
        "audio_error": row["error"],
    }


def fill_later(app: Flask, ids: Iterable[int]) -> None:
    """Compute missing audio facts for `ids` on a daemon thread; at most one such thread runs."""
    ids = list(ids)
    if not ids or not _filling.acquire(blocking=False):
        return

    def work() -> None:
        cfg = current.config(app).database
        conn = database.connect(cfg.path, cfg.busy_timeout_ms)
        try:
            audio_facts.measure_missing(conn, ids, current.config(app).audio)
        except Exception:  # a background cache fill must never take anything down
            log.exception("filling audio metadata failed")
        finally:
            conn.close()
            _filling.release()

    threading.Thread(target=work, name="audio-meta", daemon=True).start()


def measure_usable(app: Flask, conn: sqlite3.Connection) -> None:
    """Measure the usable items' audio never measured, so a clip without audio or over 30 s is counted as
    unusable, not as pending, before anyone clicks Train."""
    waiting = training_sets.unmeasured(conn, MEASURE_IN_REQUEST + 5000)
    audio_facts.measure_missing(conn, waiting[:MEASURE_IN_REQUEST], current.config(app).audio)
    fill_later(app, waiting[MEASURE_IN_REQUEST:])
