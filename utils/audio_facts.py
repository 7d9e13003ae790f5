"""An item's audio facts (format, duration, sample rate, or why it does not decode), measured once per blob
and cached in `s2s_app_audio_meta`, keyed by the blob's length, which changes when the assistant rewrites it.

The editor, the list and an export read them; once a clip is known not to decode or to last longer
than Whisper hears, it stops counting as usable (utils/training_sets.HAS_AUDIO).
"""
from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable
from typing import Any

from utils import audio, audio_meta_rows, database
from utils.config import AudioConfig

log = logging.getLogger(__name__)


def measure(conn: sqlite3.Connection, item_id: int, length: int, cfg: AudioConfig) -> dict[str, Any]:
    """Read the header (no full decode where the container allows), cache and return the facts."""
    blob = database.get_audio(conn, item_id)
    try:
        facts = audio.info(blob, cfg)
        row = {"mime": facts.mime, "duration_s": round(facts.duration_s, 3),
               "sample_rate": facts.sample_rate, "error": None}
    except audio.AudioError as exc:
        row = {"mime": None, "duration_s": None, "sample_rate": None, "error": str(exc)}
    try:
        audio_meta_rows.store(conn, item_id, length, row["mime"], row["duration_s"], row["sample_rate"],
                                  row["error"], audio.pcm_settings(cfg) if audio.sniff(blob or b"") == "pcm" else None)
    except sqlite3.OperationalError as exc:
        # A cache write losing to the assistant's lock is harmless: computed again next time.
        log.info("audio meta for item %s not cached: %s", item_id, exc)
    return row


def measure_missing(conn: sqlite3.Connection, ids: Iterable[int], cfg: AudioConfig) -> None:
    """Facts for those of `ids` never measured; items deleted meanwhile are passed over."""
    for item_id in audio_meta_rows.ids_without(conn, ids):
        try:
            measure(conn, item_id, database.audio_length(conn, item_id), cfg)
        except database.NotFound:
            continue
