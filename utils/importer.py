"""Clips from elsewhere into the shared table: checked, de-duplicated, and added in short transactions.

Every clip is decoded first (bounded, as everywhere: utils/audio.py), so a file that
cannot be heard is listed with the reason instead of landing in the review queue.
A clip whose audio bytes are already in the database, or earlier in the same import,
is skipped and counted. Items are added in batches, each one short transaction (so
the assistant's own inserts never wait long for the lock) holding the items and
their held-out or regression marks together; an import that stops part-way is
finished by running it again, which skips what is already in as duplicates.
"""
from __future__ import annotations

import hashlib
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from utils import audio, database, disk, training_sets, transcripts
from utils.config import AudioConfig
from utils.import_sources import Candidate, candidates
from utils.schema import TABLE

BATCH_BYTES = 32 * 1024 * 1024
BATCH_ITEMS = 500


@dataclass
class ImportReport:
    added: int = 0
    reviewed: int = 0
    without_text: int = 0
    duplicates: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"added {self.added} items ({self.reviewed} reviewed)"]
        if self.without_text:
            parts.append(f"{self.without_text} without a transcript, left unreviewed")
        parts.append(f"skipped {self.duplicates} duplicates")
        parts.append(f"{len(self.problems)} files could not be imported")
        return ", ".join(parts)


class _Existing:
    """Hashes of the audio already stored, computed only for blobs as long as a new clip (lengths come free
    from the record header), so checking for duplicates never reads the whole database."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.by_length: dict[int, list[int]] = defaultdict(list)
        for item_id, length in conn.execute(f"SELECT id, length(audio_blob) FROM {TABLE}"):
            self.by_length[length or 0].append(item_id)
        self.seen: set[bytes] = set()

    def holds(self, blob: bytes, digest: bytes) -> bool:
        for item_id in self.by_length.pop(len(blob), []):  # hashed once, then remembered in `seen`
            self.seen.add(hashlib.sha256(database.get_audio(self.conn, item_id)).digest())
        return digest in self.seen


def _insert(conn: sqlite3.Connection, batch: list[tuple[Candidate, bytes, bool]], keep_free_mb: int) -> None:
    """One transaction per batch, after checking that the batch (and its journal) leaves the assistant's
    margin free on the database's disk: an import must never be what makes its recordings fail."""
    where = database.file_of(conn)
    if where is not None:
        disk.ensure_room(where.parent, 2 * sum(len(blob) for _, blob, _ in batch) + (1 << 20),
                         "the imported clips", "Import fewer clips, or free space on the database's disk.",
                         keep_free_mb)
    with database.transaction(conn):
        for candidate, blob, reviewed in batch:
            item_id = database.insert_item(conn, candidate.transcript, blob, int(reviewed),
                                           timestamp=candidate.timestamp)
            training_sets.mark_role(conn, item_id, candidate.role)
            if candidate.no_speech:
                training_sets.mark_role(conn, item_id, "no_speech")


def _fit_transcript(candidate: Candidate, problems: list[tuple[str, str]]) -> bool:
    """Hold an imported transcript to the editor's rules (utils/transcripts.py): control and bidi characters
    are removed and reported; one longer than the editor can save again is refused."""
    if not isinstance(candidate.transcript, str):
        return True
    text, removed = transcripts.cleaned(candidate.transcript)
    if len(text) > transcripts.MAX_CHARS:
        problems.append((candidate.source, f"the transcript is longer than the {transcripts.MAX_CHARS:,} "
                                           "characters the editor can save: refused"))
        return False
    if removed:
        problems.append((candidate.source, f"{removed} control or direction-changing character(s) removed from "
                                           "the transcript (added)"))
        candidate.transcript = text
    return True


def import_clips(conn: sqlite3.Connection, path: Path, audio_cfg: AudioConfig,
                 reviewed: bool | None = None, keep_free_mb: int = disk.AUTO) -> ImportReport:
    """Import what `path` holds (see utils/import_sources.py).

    `reviewed` True marks every item with words reviewed (their text was checked elsewhere), False none;
    None keeps what the source says (a database's own flag) and leaves the rest for review here.
    """
    report = ImportReport()
    existing = _Existing(conn)
    batch: list[tuple[Candidate, bytes, bool]] = []
    size = 0
    for candidate in candidates(path, report.problems):
        try:
            blob = candidate.read()
            audio.decode(blob, audio_cfg)
        except OSError as exc:
            report.problems.append((candidate.source, f"cannot be read: {exc.strerror or exc}"))
            continue
        except audio.AudioError as exc:
            report.problems.append((candidate.source, str(exc)))
            continue
        if not _fit_transcript(candidate, report.problems):
            continue
        digest = hashlib.sha256(blob).digest()
        if existing.holds(blob, digest):
            report.duplicates += 1
            continue
        existing.seen.add(digest)
        has_words = training_sets.has_text(candidate.transcript) or candidate.no_speech
        is_reviewed = has_words and (candidate.reviewed if reviewed is None else reviewed) is True
        report.without_text += not has_words
        report.reviewed += is_reviewed
        batch.append((candidate, blob, is_reviewed))
        size += len(blob)
        if size >= BATCH_BYTES or len(batch) >= BATCH_ITEMS:
            _insert(conn, batch, keep_free_mb)
            report.added += len(batch)
            batch, size = [], 0
    if batch:
        _insert(conn, batch, keep_free_mb)
        report.added += len(batch)
    return report
