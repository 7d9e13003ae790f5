"""What an import can read, as a list of candidate clips that hold no audio until asked.

Three kinds of source, told apart by what PATH holds:
- an SQLite file with the seed's table (another S2S Training or assistant database);
- a folder with `metadata.csv` or `metadata.jsonl` files: a Hugging Face `audiofolder`
  dataset, such as `main.py export` writes; a `test` or `validation` folder (or a `role`
  column of `heldout`/`regression`) marks items this app must never train on, and when a
  dataset has such a split its train items stay train items;
- any other folder: `name.<audio>` files, each with its transcript in `name.txt` beside it.
"""
from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from utils import columns, csv_cells
from utils.schema import TABLE

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3"}
# Files (and a database's blobs) over this size are refused before they are read: a voice assistant's
# clips are seconds long (the decoder's own bound is 5 minutes), and a sparse 1 GB "WAV" must not
# take gigabytes of memory to find out.
MAX_FILE_BYTES = 128 * 1024 * 1024
# Rows one database import reads: ten times the 100,000 items the list is measured on (docs/performance.md).
MAX_ROWS = 1_000_000
# A transcript file longer than this is no transcript (utils/transcripts.MAX_CHARS is what may be kept).
MAX_TEXT_FILE_BYTES = 1024 * 1024
TEXT_COLUMNS = ("transcription", "text", "sentence", "transcript")
HELD_SPLITS = {"test", "validation", "valid", "dev", "eval"}
ROLES = {"train", "heldout", "regression"}


@dataclass
class Candidate:
    source: str  # what the report names: a path, or "database.db#12"
    transcript: str | None
    read: Callable[[], bytes]
    # "train", "heldout" or "regression" where the dataset says so (utils/training_sets.mark_role)
    role: str | None = None
    reviewed: bool | None = None  # what the source says, where it says anything
    timestamp: str | None = None
    no_speech: bool = False  # marked as holding no speech: its empty transcript is the target


class SourceError(Exception):
    """PATH is not something an import can read; the message says why."""


def candidates(path: Path, problems: list[tuple[str, str]]) -> list[Candidate]:
    """Every clip PATH offers; what cannot even be paired up is added to `problems`."""
    if path.is_file():
        return list(_from_database(path))
    if not path.is_dir():
        raise SourceError(f"there is nothing at {path}")
    metadata = sorted(p for p in path.rglob("metadata.*") if p.suffix in (".csv", ".jsonl"))
    if metadata:
        return _from_audiofolder(path, metadata, problems)
    return _from_pairs(path, problems)


def _inside(root: Path, path: Path) -> Path | None:
    """`path` resolved, when it is a regular file inside `root` (a link that stays inside is followed);
    None for anything that leaves the source, so an import never reads a file the dataset only names."""
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a loop of links
        return None
    return resolved if resolved.is_relative_to(root.resolve()) and resolved.is_file() else None


def _reader(path: Path) -> Callable[[], bytes]:
    """Reads the file once asked, after checking its size (OSError says why not)."""
    def read() -> bytes:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise OSError(f"it holds {size / 1e6:.0f} MB, more than the {MAX_FILE_BYTES / 1e6:.0f} MB a clip may")
        return path.read_bytes()
    return read


def _from_database(path: Path) -> Iterator[Candidate]:
    try:
        # As a URI, so a '#' or '?' in the path is part of the name (as_uri escapes them), read-only.
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
        conn.text_factory = columns.lenient_text
        kind = conn.execute("SELECT type FROM sqlite_master WHERE name = ?", (TABLE,)).fetchone()
        if kind is not None and kind[0] != "table":
            # A view can be anything, an endless recursive one included: only a table is read.
            raise SourceError(f"{path}: {TABLE} is a {kind[0]}, not a table; only a table is imported")
        # Ids first, bounded; each row's text is read when its turn comes, so neither a huge table nor
        # huge transcripts are ever held at once, and the assistant is not locked out meanwhile.
        ids = [r[0] for r in conn.execute(f"SELECT id FROM {TABLE} ORDER BY id LIMIT ?", (MAX_ROWS + 1,))]
        if len(ids) > MAX_ROWS:
            raise SourceError(f"{path}: {TABLE} holds more than {MAX_ROWS:,} rows, more than one import takes")
    except sqlite3.Error as exc:
        raise SourceError(f"{path} is not a folder of clips nor a database with the table {TABLE}: {exc}") from None

    def reader(item_id: int) -> Callable[[], bytes]:
        def read() -> bytes:
            row = conn.execute(f"SELECT length(audio_blob) FROM {TABLE} WHERE id = ?", (item_id,)).fetchone()
            if row is None:
                raise OSError("the row is no longer in the source database")
            if (row[0] or 0) > MAX_FILE_BYTES:
                raise OSError(f"its audio holds {row[0] / 1e6:.0f} MB, more than the {MAX_FILE_BYTES / 1e6:.0f} MB "
                              "a clip may")
            found = conn.execute(f"SELECT CAST(audio_blob AS BLOB) FROM {TABLE} WHERE id = ?", (item_id,)).fetchone()
            if found is None:
                raise OSError("the row is no longer in the source database")
            return bytes(found[0] or b"")
        return read

    for item_id in ids:
        if not isinstance(item_id, int):
            yield Candidate(f"{path.name}#{item_id}", None, _refuse("the row has no integer id"))
            continue
        # Bounded as a transcript file is: past that it is no transcript, and is refused as too long.
        row = conn.execute(f"SELECT substr({columns.as_text('transcript')}, 1, {MAX_TEXT_FILE_BYTES + 1}), "
                           f"{columns.as_flag('is_reviewed')}, substr({columns.as_text('timestamp')}, 1, 64) "
                           f"FROM {TABLE} WHERE id = ?", (item_id,)).fetchone()
        if row is None:
            yield Candidate(f"{path.name}#{item_id}", None, _refuse("the row is no longer in the source database"))
            continue
        transcript, reviewed, timestamp = row
        yield Candidate(f"{path.name}#{item_id}", transcript, reader(item_id), reviewed=bool(reviewed),
                        timestamp=timestamp)


def _refuse(why: str) -> Callable[[], bytes]:
    """A reader for a candidate known to be unreadable: the report names it with `why`."""
    def read() -> bytes:
        raise OSError(why)
    return read


def _metadata_rows(metadata: Path, problems: list[tuple[str, str]]) -> list[tuple[int, dict]]:
    """(line number, row) of each row; a .jsonl line that is not a JSON object is reported and passed over."""
    with metadata.open(encoding="utf-8-sig", newline="") as f:
        if metadata.suffix == ".csv":
            return list(enumerate(csv.DictReader(f), start=2))
        rows = []
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                problems.append((f"{metadata}:{number}", f"not JSON: {exc}"))
                continue
            if isinstance(row, dict):
                rows.append((number, row))
            else:
                problems.append((f"{metadata}:{number}", f"a JSON {type(row).__name__}, not an object"))
        return rows


def _role(row: dict, metadata: Path, root: Path) -> str:
    if isinstance(row.get("role"), str) and row["role"] in ROLES:
        return row["role"]
    folders = {p.lower() for p in metadata.parent.relative_to(root).parts}
    return "heldout" if folders & HELD_SPLITS else "train"


def _from_audiofolder(root: Path, metadata: list[Path], problems: list[tuple[str, str]]) -> list[Candidate]:
    found, listed = [], set()
    for table in metadata:
        if _inside(root, table) is None:
            problems.append((str(table), "a link to outside the dataset folder: refused"))
            continue
        try:
            rows = _metadata_rows(table, problems)
        except (OSError, UnicodeDecodeError, ValueError, csv.Error) as exc:
            problems.append((str(table), f"cannot read the metadata: {exc}"))
            continue
        for number, row in rows:
            name = row.get("file_name")
            if not isinstance(name, str) or not name:
                problems.append((f"{table}:{number}", "no file_name"))
                continue
            named = table.parent / name
            listed.add(named.resolve())
            text = next((row[c] for c in TEXT_COLUMNS if isinstance(row.get(c), str)), None)
            if text is not None and table.suffix == ".csv":
                text = csv_cells.from_spreadsheet(text)  # as an export wrote it
            audio_path = _inside(root, named)
            if audio_path is None:
                why = "named in metadata but not there" if not named.exists() and not named.is_symlink() \
                    else "outside the dataset folder (a link, '..' or an absolute path): refused"
                problems.append((str(named), why))
                continue
            found.append(Candidate(str(named), text, _reader(audio_path), _role(row, table, root),
                                   no_speech=str(row.get("no_speech", "")).strip() in ("1", "true", "True")))
    for stray in sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
        if stray.resolve() not in listed:
            problems.append((str(stray), "not named in any metadata file: skipped"))
    if all(c.role == "train" for c in found):  # no split in the dataset: this app's own rule chooses
        for c in found:
            c.role = None
    return found


def _from_pairs(root: Path, problems: list[tuple[str, str]]) -> list[Candidate]:
    audio = {p.with_suffix(""): p for p in sorted(root.rglob("*")) if p.suffix.lower() in AUDIO_SUFFIXES}
    texts = {p.with_suffix(""): p for p in sorted(root.rglob("*.txt"))}
    for stem in sorted(texts.keys() - audio.keys()):
        problems.append((str(texts[stem]), "a transcript without an audio file of the same name"))
    found = []
    for stem, audio_path in sorted(audio.items()):
        if _inside(root, audio_path) is None:
            problems.append((str(audio_path), "a link to outside the folder: refused"))
            continue
        text = None
        if stem in texts:
            text_path = _inside(root, texts[stem])
            if text_path is None:
                problems.append((str(texts[stem]), "a link to outside the folder: refused"))
                continue
            try:
                if text_path.stat().st_size > MAX_TEXT_FILE_BYTES:
                    raise OSError(f"it holds over {MAX_TEXT_FILE_BYTES // 1024} KB")
                text = text_path.read_text(encoding="utf-8-sig").strip()
            except (OSError, UnicodeDecodeError) as exc:
                problems.append((str(texts[stem]), f"cannot read the transcript: {exc}"))
                continue
        found.append(Candidate(str(audio_path), text, _reader(audio_path.resolve())))
    return found
