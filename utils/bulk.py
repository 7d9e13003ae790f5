"""Find and replace across transcripts, applied as one batch in one transaction, and undone as one.

A reviewer fixing the same misheard name for the hundredth time wants it fixed everywhere at once,
to see every change first, and to take the whole batch back later. The rules follow single edits
(utils/database.update_item): an item changed since the preview (its version differs) is left alone
and reported; a new transcript clears `is_trained`; reviewed items change only when asked and then
stay reviewed. Undo restores what the batch changed, except items edited since, which are reported.
"""
from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from utils import database, runs, transcripts
from utils.schema import TABLE


@dataclass(frozen=True)
class Search:
    """What to find: `text` literally, as a whole word or inside words, with or without case."""
    text: str
    whole_word: bool = True
    match_case: bool = False
    include_reviewed: bool = False

    def pattern(self) -> re.Pattern[str]:
        body = re.escape(self.text)
        if self.whole_word:  # not \b: "C++" or "Dr." end in characters \b does not treat as a word edge
            body = rf"(?<!\w){body}(?!\w)"
        return re.compile(body, 0 if self.match_case else re.IGNORECASE)


def _candidates(conn: sqlite3.Connection, search: Search) -> list[sqlite3.Row]:
    """Rows whose transcript may match, narrowed in SQL so 100,000 items cost one index scan: the
    folded match finds every transcript the regex can match (and some it will not), and the regex decides."""
    contains, args = database.transcript_contains(search.text)
    where = ["typeof(d.transcript) = 'text'", contains]
    if not search.include_reviewed:
        where.append("d.is_reviewed IS NOT 1")
    return conn.execute(f"SELECT {database.LIST_COLUMNS} "
                        f"FROM {database.BY_LIST} WHERE {' AND '.join(where)} ORDER BY d.id", args).fetchall()


def tag(matches: list[dict[str, Any]]) -> str:
    """One version for a whole preview, as an item's version is for one item: applying "all" with it
    is refused (412) when any match was edited, or matches appeared or went, since."""
    return hashlib.sha1(";".join(f"{m['id']}:{m['version']}" for m in matches).encode()).hexdigest()[:16]


class StalePreview(Exception):
    """The matches changed since the preview the client applies; carries the current matches."""

    def __init__(self, matches: list[dict[str, Any]]):
        super().__init__("the matches changed since the preview")
        self.matches = matches


def preview(conn: sqlite3.Connection, search: Search, replacement: str) -> list[dict[str, Any]]:
    """Every match: id, version, is_reviewed, the transcript now and after the replacement. A match the
    replacement would make longer than a transcript may be (utils/transcripts.py) keeps its transcript as
    `replaced` and says why in `refused`: apply leaves it alone, as the editor could not save it again."""
    pattern, out = search.pattern(), []
    for row in _candidates(conn, search):
        after = pattern.sub(lambda _: replacement, row["transcript"])
        if after != row["transcript"]:
            match = {"id": row["id"], "version": database.item_version(row), "is_reviewed": row["is_reviewed"],
                     "transcript": row["transcript"], "replaced": after}
            if len(after) > transcripts.MAX_CHARS:
                match.update(replaced=row["transcript"], refused=f"it would hold {len(after):,} characters, more "
                                                                 f"than the {transcripts.MAX_CHARS:,} a transcript may")
            out.append(match)
    return out


def apply(conn: sqlite3.Connection, search: Search, replacement: str,
          versions: dict[int, str] | None = None, preview_tag: str | None = None) -> dict[str, Any]:
    """Replace in the items of `versions` (id → the version the preview showed them at), or in every
    match when `versions` is None, then only if the matches still have `preview_tag` (when given).
    One transaction, recorded as a batch that undo() takes back."""
    batch_id = secrets.token_hex(6)
    skipped: list[dict[str, Any]] = []
    edits = []
    with database.transaction(conn):
        matches = preview(conn, search, replacement)
        if versions is None and preview_tag is not None and tag(matches) != preview_tag:
            raise StalePreview(matches)
        for match in matches:
            if "refused" in match:
                if versions is None or match["id"] in versions:
                    skipped.append({"id": match["id"], "reason": match["refused"]})
                continue
            if versions is not None:
                if match["id"] not in versions:
                    continue
                if versions[match["id"]] != match["version"]:
                    skipped.append({"id": match["id"], "reason": "changed since the preview"})
                    continue
            edits.append(match)
        if versions is not None:
            found = {m["id"] for m in edits} | {s["id"] for s in skipped}  # refused ones are in skipped
            skipped += [{"id": i, "reason": "no longer matches"} for i in versions if i not in found]
        trained = dict(conn.execute(f"SELECT id, is_trained = 1 FROM {TABLE} WHERE id IN "
                                    f"(SELECT value FROM json_each(?))", (_ids_json(m["id"] for m in edits),)))
        conn.executemany(f"UPDATE {TABLE} SET transcript = ?, is_trained = 0 WHERE id = ?",
                         [(m["replaced"], m["id"]) for m in edits])
        conn.executemany("INSERT INTO s2s_app_bulk_edits(batch_id, item_id, before, after, was_trained, "
                         "was_reviewed) VALUES (?, ?, ?, ?, ?, ?)",
                         [(batch_id, m["id"], m["transcript"], m["replaced"], int(bool(trained.get(m["id"]))),
                           int(m["is_reviewed"] == 1)) for m in edits])
        conn.execute("INSERT INTO s2s_app_bulk_batches(batch_id, created_at, find, replace, changed) "
                     "VALUES (?, ?, ?, ?, ?)", (batch_id, database.now(), search.text, replacement, len(edits)))
    return {"batch_id": batch_id, "changed": len(edits), "skipped": skipped}


def _ids_json(ids: Iterable[int]) -> str:
    return "[" + ",".join(str(int(i)) for i in ids) + "]"


class UnknownBatch(LookupError):
    """No batch with that id."""


class AlreadyUndone(Exception):
    """The batch was undone before."""


def undo(conn: sqlite3.Connection, batch_id: str,
         lineage: Callable[[], list[str]] | None = None) -> dict[str, Any]:
    """Put back what the batch changed, in one transaction; items edited, reviewed or trained on since are
    left alone and listed. With `lineage` (giving the deployed model's versions, read inside the
    transaction), the trained flags then follow what that model learned, as after a deploy
    (utils/runs.sync_trained): an undo after a rollback never marks trained what the model in use never saw."""
    with database.transaction(conn):
        batch = conn.execute("SELECT undone_at FROM s2s_app_bulk_batches WHERE batch_id = ?", (batch_id,)).fetchone()
        if batch is None:
            raise UnknownBatch(batch_id)
        if batch["undone_at"]:
            raise AlreadyUndone(batch_id)
        # Restored only where the transcript is still what the batch wrote, nothing re-trained it, and no one
        # reviewed (or un-reviewed) it since: an approval given after the batch approved the batch's text.
        # (Batches recorded before was_reviewed existed hold NULL there: the review is not checked for them.)
        restorable = conn.execute(
            f"SELECT e.item_id FROM s2s_app_bulk_edits e JOIN {TABLE} d ON d.id = e.item_id "
            "WHERE e.batch_id = ? AND d.transcript IS e.after AND d.is_trained IS NOT 1 "
            "AND (e.was_reviewed IS NULL OR (d.is_reviewed = 1) = e.was_reviewed)", (batch_id,)).fetchall()
        ids = [r[0] for r in restorable]
        conn.execute(
            f"UPDATE {TABLE} SET transcript = (SELECT before FROM s2s_app_bulk_edits e WHERE e.batch_id = ? "
            f"AND e.item_id = {TABLE}.id), is_trained = (SELECT was_trained FROM s2s_app_bulk_edits e "
            f"WHERE e.batch_id = ? AND e.item_id = {TABLE}.id) WHERE id IN (SELECT value FROM json_each(?))",
            (batch_id, batch_id, _ids_json(ids)))
        if lineage is not None:
            runs.sync_trained(conn, lineage())
        done = set(ids)
        left = [r[0] for r in conn.execute("SELECT item_id FROM s2s_app_bulk_edits WHERE batch_id = ? ORDER BY "
                                           "item_id", (batch_id,)) if r[0] not in done]
        conn.execute("UPDATE s2s_app_bulk_batches SET undone_at = ? WHERE batch_id = ?", (database.now(), batch_id))
    return {"batch_id": batch_id, "restored": len(ids),
            "skipped": [{"id": i, "reason": "edited, reviewed, trained on or deleted since the batch"}
                                                          for i in left]}


def batches(conn: sqlite3.Connection, limit: int = 20) -> list[dict[str, Any]]:
    """The latest batches, newest first."""
    return [dict(r) for r in conn.execute(
        "SELECT batch_id, created_at, find, replace, changed, undone_at FROM s2s_app_bulk_batches "
        "ORDER BY created_at DESC, rowid DESC LIMIT ?", (limit,))]
