"""The log of kept versions deployed by hand (a rollback, or forward again), which no run records: without
it the history reads as if the last run's model were still the one in use."""
from __future__ import annotations

import sqlite3
from typing import Any

from utils.database import now


def record(conn: sqlite3.Connection, version: str, previous: str | None) -> None:
    """Inside the transaction that makes the item flags agree with `version`, so the two never disagree."""
    conn.execute("INSERT INTO s2s_app_rollbacks(at, version, previous) VALUES (?, ?, ?)", (now(), version, previous))


def history(conn: sqlite3.Connection, limit: int = 100) -> list[dict[str, Any]]:
    """Newest first; `previous` is the version it replaced (v0-original for the user's own model)."""
    rows = conn.execute("SELECT at, version, previous FROM s2s_app_rollbacks ORDER BY at DESC, rowid DESC LIMIT ?",
                        (limit,)).fetchall()
    return [{"at": str(at), "version": str(version), "previous": None if previous is None else str(previous)}
            for at, version, previous in rows]
