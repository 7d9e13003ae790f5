"""What the deployed model heard in each clip (`s2s_app_suggestions`), and ordering items by it.

Rows are kept per model (its fingerprint), so a new model's suggestions never mix
with an old one's; the stored transcript's version says when the WER against it
must be worked out again.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from utils.schema import SUGGESTIONS, TABLE

# Most worth reviewing first; unscored items last in both orders (`IS NULL` is 0 for scored rows).
RANKINGS = {"disagreement": "s.wer IS NULL, s.wer DESC", "uncertainty": "s.avg_logprob IS NULL, s.avg_logprob ASC"}
_JOIN = f"LEFT JOIN {SUGGESTIONS} s ON s.item_id = d.id AND s.model_fingerprint = ?"


@dataclass(frozen=True)
class Ranking:
    """Order items by what the model with `fingerprint` heard: "disagreement" or "uncertainty"."""
    by: str
    fingerprint: str

    def sql(self) -> tuple[str, str, list[Any]]:
        """The JOIN that brings the suggestion in as `s`, the ORDER BY terms, and the JOIN's parameters."""
        return _JOIN, RANKINGS[self.by], [self.fingerprint]


def stored(conn: sqlite3.Connection, item_id: int, fingerprint: str) -> sqlite3.Row | None:
    return conn.execute(f"SELECT transcript_version, text, avg_logprob, wer, words_json FROM {SUGGESTIONS} "
                        "WHERE item_id = ? AND model_fingerprint = ?", (item_id, fingerprint)).fetchone()


def store(conn: sqlite3.Connection, item_id: int, fingerprint: str, transcript_version: str, text: str,
          avg_logprob: float, wer: float, created_at: str, words_json: str | None = None) -> None:
    conn.execute(f"INSERT OR REPLACE INTO {SUGGESTIONS}(item_id, model_fingerprint, transcript_version, text, "
                 "avg_logprob, wer, created_at, words_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                 (item_id, fingerprint, transcript_version, text, avg_logprob, wer, created_at, words_json))


def update_wer(conn: sqlite3.Connection, item_id: int, fingerprint: str, transcript_version: str, wer: float) -> None:
    """The stored transcript changed since the model heard the clip: its WER against the new text."""
    conn.execute(f"UPDATE {SUGGESTIONS} SET transcript_version = ?, wer = ? "
                 "WHERE item_id = ? AND model_fingerprint = ?",
                 (transcript_version, wer, item_id, fingerprint))


def keep_only(conn: sqlite3.Connection, fingerprints: list[str]) -> None:
    """Delete what models other than `fingerprints` heard."""
    conn.execute(f"DELETE FROM {SUGGESTIONS} WHERE model_fingerprint NOT IN (SELECT value FROM json_each(?))",
                 (json.dumps(fingerprints),))


def unscored_ids(conn: sqlite3.Connection, fingerprint: str) -> list[int]:
    """Unreviewed items the model with `fingerprint` has not transcribed yet, oldest first."""
    return [r[0] for r in conn.execute(
        f"SELECT d.id FROM {TABLE} d {_JOIN} WHERE d.is_reviewed IS NOT 1 AND s.item_id IS NULL ORDER BY d.id",
        [fingerprint])]


def disagreement_counts(conn: sqlite3.Connection, fingerprint: str) -> tuple[int, int]:
    """(unreviewed items the model has transcribed, those of them it writes differently from the stored
    transcript), for the dashboard's line after a deploy."""
    scored, differ = conn.execute(
        f"SELECT count(*), coalesce(sum(s.wer > 0), 0) FROM {TABLE} d JOIN {SUGGESTIONS} s "
        "ON s.item_id = d.id AND s.model_fingerprint = ? WHERE d.is_reviewed IS NOT 1", (fingerprint,)).fetchone()
    return scored, differ
