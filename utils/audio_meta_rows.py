"""The rows of `s2s_app_audio_meta`: each item's audio facts as measured once (utils/audio_facts.py), keyed by the
blob's length, which changes when the assistant rewrites the clip."""
from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from utils import database


def cached(conn: sqlite3.Connection, item_id: int, blob_length: int) -> sqlite3.Row | None:
    """Audio facts computed earlier, valid while the blob keeps the same length."""
    return conn.execute(
        "SELECT mime, duration_s, sample_rate, error FROM s2s_app_audio_meta WHERE item_id = ? AND blob_length = ?",
        (item_id, blob_length),
    ).fetchone()


def store(
    conn: sqlite3.Connection, item_id: int, blob_length: int, mime: str | None,
    duration_s: float | None, sample_rate: int | None, error: str | None, pcm_settings: str | None = None,
) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO s2s_app_audio_meta(item_id, blob_length, mime, duration_s, sample_rate, error, "
        "pcm_settings) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (item_id, blob_length, mime, duration_s, sample_rate, error, pcm_settings),
    )


def forget_pcm_facts_unlike(path: Path, settings: str, busy_timeout_ms: int = 5000) -> None:
    """Drop raw PCM clips' facts measured under other [audio] settings: a clip refused as f32le read as
    s16le is measured again, and usable again, once the setting fits."""
    conn = database.connect(path, busy_timeout_ms)
    try:
        conn.execute("DELETE FROM s2s_app_audio_meta WHERE pcm_settings IS NOT NULL AND pcm_settings <> ?",
                     (settings,))
    finally:
        conn.close()


def ids_without(conn: sqlite3.Connection, ids: Iterable[int]) -> list[int]:
    ids = list(ids)
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    have = {r[0] for r in conn.execute(f"SELECT item_id FROM s2s_app_audio_meta WHERE item_id IN ({marks})", ids)}
    return [i for i in ids if i not in have]
