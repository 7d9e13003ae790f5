"""Audio facts (format, duration, sample rate) per item, cached in `s2s_app_audio_meta`.

Reading a blob to learn its duration costs a decode, so it is done once per
blob (keyed by its length, which changes when the assistant rewrites it) and,
for listings, on a background thread instead of in the request.
"""
from __future__ import annotations

import logging
import sqlite3
import threading
from typing import Any, Iterable

from flask import Flask

from utils import audio, database

log = logging.getLogger(__name__)
_filling = threading.Lock()


def describe(app: Flask, conn: sqlite3.Connection, item_id: int) -> dict[str, Any]:
    """`audio_mime`, `duration_s`, `sample_rate` and `audio_error` (None when the audio is fine)."""
    length = database.audio_length(conn, item_id)
    row = database.cached_audio_meta(conn, item_id, length)
    if row is None:
        row = _compute(app, conn, item_id, length)
    return {
        "audio_mime": row["mime"],
        "duration_s": row["duration_s"],
        "sample_rate": row["sample_rate"],
        "audio_error": row["error"],
    }


def _compute(app: Flask, conn: sqlite3.Connection, item_id: int, length: int) -> dict[str, Any]:
    cfg = app.config["S2S"].audio
    try:
        facts = audio.info(database.get_audio(conn, item_id), cfg)
        row = {"mime": facts.mime, "duration_s": round(facts.duration_s, 3),
               "sample_rate": facts.sample_rate, "error": None}
    except audio.AudioError as exc:
        row = {"mime": None, "duration_s": None, "sample_rate": None, "error": str(exc)}
    try:
        database.store_audio_meta(conn, item_id, length, row["mime"], row["duration_s"],
                                  row["sample_rate"], row["error"])
    except sqlite3.OperationalError as exc:
        # A cache write losing to the assistant's lock is harmless: computed again next time.
        log.info("audio meta for item %s not cached: %s", item_id, exc)
    return row


def fill_later(app: Flask, ids: Iterable[int]) -> None:
    """Compute missing audio facts for `ids` on a daemon thread; at most one such thread runs."""
    ids = list(ids)
    if not ids or not _filling.acquire(blocking=False):
        return

    def work() -> None:
        cfg = app.config["S2S"].database
        conn = database.connect(cfg.path, cfg.busy_timeout_ms)
        try:
            for item_id in database.ids_without_audio_meta(conn, ids):
                try:
                    _compute(app, conn, item_id, database.audio_length(conn, item_id))
                except database.NotFound:
                    continue
        except Exception:  # a background cache fill must never take anything down
            log.exception("filling audio metadata failed")
        finally:
            conn.close()
            _filling.release()

    threading.Thread(target=work, name="audio-meta", daemon=True).start()
