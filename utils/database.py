"""The data layer over `s2s_training_data`, the table the assistant writes too.

Rules that follow from sharing the file with another program:
- WAL mode and a busy timeout, so readers never block the assistant's inserts
  and a momentary write lock waits instead of failing.
- Write transactions are short and `BEGIN IMMEDIATE`, so a read-modify-write
  never upgrades a read lock mid-way (the classic source of "database is locked").
- The user's table and columns are never altered; what the app needs for itself
  lives in tables and indexes prefixed `s2s_app_`.
- Listing never touches `audio_blob`: the seed puts the blob in the middle of
  the row, so reading the flags after it would walk the blob's overflow pages.
  A covering index holds every listed column instead.
"""
from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from utils import columns, transcripts
from utils.schema import BY_LIST, SEED_SCHEMA, TABLE, migrate  # noqa: F401  (SEED_SCHEMA: the assistant's table, for tests)
from utils.suggestion_rows import Ranking
from utils.training_sets import IS_HELDOUT, IS_NO_SPEECH, IS_REGRESSION, UNUSABLE, UNUSABLE_REASON, has_text

# Every column as the seed's type, whatever the other program stored (see utils/columns.py).
LIST_COLUMNS = (f"d.id, {columns.as_text('d.transcript')} AS transcript, "
                f"{columns.as_flag('d.is_reviewed')} AS is_reviewed, "
                f"{columns.as_flag('d.is_trained')} AS is_trained, {columns.as_text('d.timestamp')} AS timestamp, "
                f"{columns.problem('d')} AS problem, {IS_NO_SPEECH} AS no_speech, "
                f"CASE WHEN {UNUSABLE} THEN {UNUSABLE_REASON} END AS unusable, {IS_REGRESSION} AS regression, "
                f"({IS_HELDOUT} AND NOT {IS_REGRESSION}) AS held_out")
SORTABLE = {"id": "d.id", "timestamp": "d.timestamp", "transcript": "d.transcript"}
# The audio column as bytes even where the other program stored it as TEXT, which Python's
# sqlite3 would otherwise try (and fail) to decode as UTF-8.
AUDIO_BYTES = "CAST(audio_blob AS BLOB)"


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """The one way the app writes: a short `BEGIN IMMEDIATE` transaction, committed when the
    block ends and rolled back if it raises, so a failure never leaves a half-done write or a
    transaction open on a connection that must go on to record why."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        # SQLite has rolled back itself after some errors (a full disk): the cause must not hide behind
        # "cannot rollback - no transaction is active".
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def file_of(conn: sqlite3.Connection) -> Path | None:
    """The file behind a connection's main database; None in memory."""
    name = conn.execute("PRAGMA database_list").fetchone()[2]
    return Path(name) if name else None


def now() -> str:
    """UTC timestamps as ISO text, for the app's own tables and files: they sort as strings, so SQL can compare them."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class NotFound(LookupError):
    """No item with that id."""


class DatabaseUnavailable(RuntimeError):
    """The database file cannot be opened or written at start-up; the message says what to do."""


# Hints for the errors a user can fix, by a phrase of SQLite's own message.
_OPEN_HINTS = {
    "readonly": "S2S Training saves reviews into it: give this account write access to the file and its folder.",
    "not a database": "It is not an SQLite database: check [database].path (or --db).",
    "unable to open": "Check the path ([database].path or --db) and that its folder can be written.",
}


class AlreadyTrained(Exception):
    """A regression check must be speech no model has learned; this item was trained on."""


class VersionConflict(Exception):
    """The item changed since the client read it; carries the current item."""

    def __init__(self, current: dict[str, Any]):
        super().__init__("item was changed by someone else")
        self.current = current


def connect(path: Path, busy_timeout_ms: int = 5000) -> sqlite3.Connection:
    """Open the shared database in autocommit mode; callers open transactions explicitly."""
    conn = sqlite3.connect(
        str(path), timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
    )
    conn.row_factory = sqlite3.Row
    conn.text_factory = columns.lenient_text
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    conn.create_function("s2s_fold", 1, _fold, deterministic=True)
    conn.create_function("s2s_valid_utf8", 1, columns.valid_utf8, deterministic=True)
    return conn


def _fold(raw: Any) -> str | None:
    # Called with the text as a BLOB: sqlite3 hands a function TEXT decoded strictly, so one
    # transcript of invalid UTF-8 the assistant wrote would fail the whole search.
    return transcripts.folded(columns.lenient_text(raw)) if isinstance(raw, bytes) else None


def init_db(path: Path, busy_timeout_ms: int = 5000) -> None:
    """Create the file, the seed table and the app's own tables if missing; switch to WAL.

    Raises DatabaseUnavailable with a one-line reason and remedy, so a start-up
    problem reads as a sentence rather than a traceback.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = connect(path, busy_timeout_ms)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            migrate(conn)
        finally:
            conn.close()
    except (sqlite3.Error, OSError) as exc:
        hint = next((h for phrase, h in _OPEN_HINTS.items() if phrase in str(exc)), "")
        raise DatabaseUnavailable(f"cannot use the database {path}: {exc}. {hint}".rstrip()) from None


def item_version(row: sqlite3.Row | dict[str, Any]) -> str:
    """A version tag derived from the editable state, since the seed table has no version column."""
    raw = f"{row['transcript']!r}|{row['is_reviewed']}|{row['is_trained']}|{row['regression']}"
    if row["no_speech"]:  # only then, so the versions clients hold from before the flag existed stay valid
        raw += "|no speech"
    return hashlib.sha1(raw.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _item(row: sqlite3.Row) -> dict[str, Any]:
    item = {
        "id": row["id"],
        "transcript": row["transcript"],
        "is_reviewed": row["is_reviewed"],
        "is_trained": row["is_trained"],
        "regression": int(row["regression"]),
        "held_out": bool(row["held_out"]),
        "no_speech": bool(row["no_speech"]),
        "timestamp": row["timestamp"],
        "problem": ((row["problem"] or "") + (columns.text_problem(row["transcript"]) or "")).strip() or None,
    }
    if "duration_s" in row.keys():
        item["duration_s"] = row["duration_s"]
    item["version"] = item_version(item)
    return item


def _like_contains(text: str) -> str:
    """A LIKE pattern (with ESCAPE '\\') for text containing `text`, its own wildcards escaped."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def transcript_contains(text: str) -> tuple[str, list[str]]:
    """A WHERE clause (and its parameters) for transcripts that hold `text` once both are folded
    (utils/transcripts.folded): "istanbul" finds "İstanbul".

    LIKE folds ASCII case only, and scans the covering index at C speed: it decides every
    ASCII transcript. Only transcripts holding another character (more bytes than characters) pay for the
    Python fold, so a search over 100,000 mostly English items stays one index scan.
    """
    needle = _like_contains(transcripts.folded(text))
    return ("(d.transcript LIKE ? ESCAPE '\\' OR (length(CAST(d.transcript AS BLOB)) <> length(d.transcript) "
            "AND s2s_fold(CAST(d.transcript AS BLOB)) LIKE ? ESCAPE '\\'))", [needle, needle])


def list_items_json(
    conn: sqlite3.Connection,
    reviewed: bool | None = None,
    trained: bool | None = None,
    q: str | None = None,
    sort: str = "id",
    descending: bool = False,
    limit: int | None = None,
    offset: int = 0,
    ranking: Ranking | None = None,
    no_speech: bool | None = None,
    unusable: bool | None = None,
) -> tuple[str, int]:
    """A filtered, ordered page of items without audio as a JSON array, and the count of all that match.

    `ranking` orders by what the deployed model heard (utils/suggestion_rows.py)
    instead of `sort`, e.g. its disagreement with each transcript.

    SQLite builds the JSON itself (json_group_array): for the unpaged list of
    100,000 items that is several times faster than making Python dicts and
    serialising them, and it never holds more than the text in memory.
    """
    where, params = [], []
    # "IS NOT 1" so rows the assistant wrote with NULL flags count as not reviewed / not trained.
    if reviewed is not None:
        where.append("d.is_reviewed = 1" if reviewed else "d.is_reviewed IS NOT 1")
    if trained is not None:
        where.append("d.is_trained = 1" if trained else "d.is_trained IS NOT 1")
    if no_speech is not None:
        where.append(IS_NO_SPEECH if no_speech else f"NOT {IS_NO_SPEECH}")
    if unusable is not None:
        where.append(f"({UNUSABLE})" if unusable else f"NOT ({UNUSABLE})")
    if q:
        clause, args = transcript_contains(q)
        where.append(clause)
        params.extend(args)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    total = conn.execute(f"SELECT count(*) FROM {BY_LIST} {clause}", params).fetchone()[0]
    direction = "DESC" if descending else "ASC"
    order = f"{SORTABLE[sort]} {direction}, d.id {direction}"
    join, join_params = "", []
    if ranking is not None:
        join, ranked_order, join_params = ranking.sql()
        order = f"{ranked_order}, d.id ASC"
    page = "LIMIT ? OFFSET ?" if limit is not None else ""
    page_params = [limit, offset] if limit is not None else []
    text = conn.execute(
        "SELECT coalesce(json_group_array(json_object('id', id, 'transcript', transcript, "
        "'is_reviewed', is_reviewed, 'is_trained', is_trained, 'timestamp', timestamp, "
        "'duration_s', duration_s, 'problem', problem, 'no_speech', json(CASE no_speech WHEN 1 THEN 'true' "
        "ELSE 'false' END), 'unusable', unusable, 'audio_error', audio_error, 'regression', regression, "
        "'held_out', json(CASE held_out WHEN 1 THEN 'true' ELSE 'false' END))), '[]') FROM ("
        f"SELECT {LIST_COLUMNS}, m.duration_s, m.error AS audio_error FROM {BY_LIST} "
        f"LEFT JOIN s2s_app_audio_meta m ON m.item_id = d.id {join} {clause} ORDER BY {order} {page})",
        join_params + params + page_params,
    ).fetchone()[0]
    return text, total


def get_item(conn: sqlite3.Connection, item_id: int) -> dict[str, Any]:
    row = conn.execute(f"SELECT {LIST_COLUMNS} FROM {BY_LIST} WHERE d.id = ?",
                       (item_id,)).fetchone()
    if row is None:
        raise NotFound(item_id)
    return _item(row)


def get_audio(conn: sqlite3.Connection, item_id: int) -> bytes:
    row = conn.execute(f"SELECT {AUDIO_BYTES} FROM {TABLE} WHERE id = ?", (item_id,)).fetchone()
    if row is None:
        raise NotFound(item_id)
    return bytes(row[0] or b"")


def reviewed_text_and_audio(conn: sqlite3.Connection, item_id: int) -> tuple[Any, bytes, bool] | None:
    """(transcript as stored, audio bytes, marked as no speech) of a reviewed item, for a run to train on;
    None if it is not reviewed.

    The transcript is not cast: a run checks it is text itself (see utils/columns.py).
    """
    row = conn.execute(f"SELECT d.transcript, CAST(d.audio_blob AS BLOB), {IS_NO_SPEECH} FROM {TABLE} d "
                       "WHERE d.id = ? AND d.is_reviewed = 1", (item_id,)).fetchone()
    return None if row is None else (row[0], bytes(row[1] or b""), bool(row[2]))


def count_items(conn: sqlite3.Connection) -> int:
    return conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]


def ping(conn: sqlite3.Connection) -> None:
    """Read the shared table once: raises if the database cannot be read (for the health check)."""
    conn.execute(f"SELECT 1 FROM {TABLE} LIMIT 1").fetchall()


def audio_length(conn: sqlite3.Connection, item_id: int) -> int:
    """length() of a BLOB is read from the record header, so this never loads the audio."""
    row = conn.execute(f"SELECT length(audio_blob) FROM {TABLE} WHERE id = ?", (item_id,)).fetchone()
    if row is None:
        raise NotFound(item_id)
    return row[0] or 0


def update_item(
    conn: sqlite3.Connection,
    item_id: int,
    transcript: str | None = None,
    is_reviewed: bool | None = None,
    if_match: str | None = None,
    regression: bool | None = None,
    no_speech: bool | None = None,
) -> dict[str, Any]:
    """Apply a reviewer's edit, refusing it if the item changed since `if_match` was read.

    Editing the transcript of an item already trained on clears `is_trained`:
    the model learned the old text, so the corrected one is pending again.
    `regression` sets the item aside as a regression check (or returns it to training).
    `no_speech` marks a clip as holding no speech: its transcript becomes empty and it counts as
    reviewed; a transcript with words clears the mark.
    """
    if no_speech:
        transcript, is_reviewed = "", True
    with transaction(conn):
        current = get_item(conn, item_id)
        if if_match is not None and if_match != "*" and if_match != current["version"]:
            raise VersionConflict(current)
        sets, params = [], []
        # Saving repairs what the other program stored with the wrong type (see utils/columns.py).
        text_type, trained_ok = conn.execute(
            f"SELECT typeof(transcript), is_trained IS NULL OR is_trained IN (0, 1) FROM {TABLE} WHERE id = ?",
            (item_id,)).fetchone()
        odd_text = text_type not in ("text", "null") or columns.INVALID_TEXT in (current["transcript"] or "")
        if transcript is not None and (transcript != current["transcript"] or odd_text):
            sets += ["transcript = ?", "is_trained = 0"]
            params.append(transcript)
        elif not trained_ok:
            sets.append("is_trained = 0")  # what it already read as
        if is_reviewed is not None:
            sets.append("is_reviewed = ?")
            params.append(int(is_reviewed))
        if sets:
            conn.execute(f"UPDATE {TABLE} SET {', '.join(sets)} WHERE id = ?", params + [item_id])
        if regression and int(conn.execute(f"SELECT coalesce(is_trained, 0) FROM {TABLE} WHERE id = ?",
                                            (item_id,)).fetchone()[0]) == 1:
            raise AlreadyTrained(item_id)
        if regression is not None:
            conn.execute("INSERT OR IGNORE INTO s2s_app_regression(item_id) VALUES (?)" if regression
                         else "DELETE FROM s2s_app_regression WHERE item_id = ?", (item_id,))
        if no_speech is not None or (transcript is not None and has_text(transcript)):
            conn.execute("INSERT OR IGNORE INTO s2s_app_no_speech(item_id) VALUES (?)" if no_speech
                         else "DELETE FROM s2s_app_no_speech WHERE item_id = ?", (item_id,))
        updated = get_item(conn, item_id)
    return updated


def neighbours(conn: sqlite3.Connection, item_id: int) -> dict[str, int | None]:
    """Ids around an item for the editor's Previous/Next and the next unreviewed one after it."""
    def one(sql: str) -> int | None:
        row = conn.execute(sql, (item_id,)).fetchone()
        return row[0] if row else None

    return {
        "prev_id": one(f"SELECT max(d.id) FROM {TABLE} d WHERE d.id < ?"),
        "next_id": one(f"SELECT min(d.id) FROM {TABLE} d WHERE d.id > ?"),
        "next_unreviewed_id": one(f"SELECT min(d.id) FROM {BY_LIST} WHERE d.is_reviewed IS NOT 1 AND d.id > ?"),
        "prev_unreviewed_id": one(f"SELECT max(d.id) FROM {BY_LIST} WHERE d.is_reviewed IS NOT 1 AND d.id < ?"),
    }


def next_unreviewed(conn: sqlite3.Connection, after_id: int = 0) -> int | None:
    """The oldest unreviewed item after `after_id`, wrapping to the start of the queue."""
    for bound in (after_id, 0):
        row = conn.execute(
            f"SELECT min(d.id) FROM {BY_LIST} WHERE d.is_reviewed IS NOT 1 AND d.id > ?", (bound,)
        ).fetchone()
        if row[0] is not None:
            return row[0]
    return None


def next_unreviewed_ranked(conn: sqlite3.Connection, ranking: Ranking, skip_id: int = 0) -> int | None:
    """The unreviewed item that ranks first by what the model heard, other than the one just shown."""
    join, order, join_params = ranking.sql()
    row = conn.execute(
        f"SELECT d.id FROM {BY_LIST} {join} WHERE d.is_reviewed IS NOT 1 AND d.id != ? ORDER BY {order}, d.id LIMIT 1",
        join_params + [skip_id],
    ).fetchone()
    return row[0] if row else None


def insert_item(conn: sqlite3.Connection, transcript: str | None, audio: bytes | None,
                is_reviewed: int = 0, is_trained: int = 0, timestamp: str | None = None) -> int:
    """Insert as the assistant does; used by the demo data and the tests."""
    if timestamp is None:
        cur = conn.execute(
            f"INSERT INTO {TABLE}(transcript, audio_blob, is_reviewed, is_trained) VALUES (?, ?, ?, ?)",
            (transcript, audio, is_reviewed, is_trained),
        )
    else:
        cur = conn.execute(
            f"INSERT INTO {TABLE}(transcript, audio_blob, is_reviewed, is_trained, timestamp) VALUES (?, ?, ?, ?, ?)",
            (transcript, audio, is_reviewed, is_trained, timestamp),
        )
    return int(cur.lastrowid)
