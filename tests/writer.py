"""The assistant's side of the shared database, run in another process by the concurrency tests."""
from __future__ import annotations

import sqlite3
import time


def insert_rows(db_path: str, count: int, blob: bytes, interval_s: float) -> int:
    """Insert `count` rows the way the assistant does (its own connection, one short transaction each)."""
    conn = sqlite3.connect(db_path, timeout=10)
    done = 0
    for i in range(count):
        with conn:
            conn.execute(
                "INSERT INTO s2s_training_data(transcript, audio_blob, is_reviewed, is_trained) VALUES (?, ?, 0, 0)",
                (f"assistant insert {i}", blob),
            )
        done += 1
        time.sleep(interval_s)
    conn.close()
    return done
