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
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from utils import columns
from utils.schema import TABLE

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3"}
TEXT_COLUMNS = ("transcription", "text", "sentence", "transcript")
HELD_SPLITS = {"test", "validation", "valid", "dev", "eval"}
ROLES = {"train", "heldout", "regression"}


@dataclass
class Candidate:
    source: str  # what the report names: a path, or "database.db#12"
    transcript: str | None
    read: Callable[[], bytes]
    role: str | None = None  # "train", "heldout" or "regression" where the dataset says so (utils/training_sets.mark_role)
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


def _from_database(path: Path) -> Iterator[Candidate]:
    try:
        conn = sqlite3.connect(f"file:{path.as_posix()}?mode=ro", uri=True, check_same_thread=False)
        conn.text_factory = columns.lenient_text
        rows = conn.execute(
            f"SELECT id, {columns.as_text('transcript')}, {columns.as_flag('is_reviewed')}, "
            f"{columns.as_text('timestamp')} FROM {TABLE} ORDER BY id").fetchall()
    except sqlite3.Error as exc:
        raise SourceError(f"{path} is not a folder of clips nor a database with the table {TABLE}: {exc}") from None

    def reader(item_id: int) -> Callable[[], bytes]:
        return lambda: bytes(conn.execute(f"SELECT CAST(audio_blob AS BLOB) FROM {TABLE} WHERE id = ?",
                                          (item_id,)).fetchone()[0] or b"")

    for item_id, transcript, reviewed, timestamp in rows:
        yield Candidate(f"{path.name}#{item_id}", transcript, reader(item_id), reviewed=bool(reviewed),
                        timestamp=timestamp)


def _metadata_rows(metadata: Path) -> list[dict]:
    with metadata.open(encoding="utf-8-sig", newline="") as f:
        if metadata.suffix == ".csv":
            return list(csv.DictReader(f))
        return [json.loads(line) for line in f if line.strip()]


def _role(row: dict, metadata: Path, root: Path) -> str:
    if row.get("role") in ROLES:
        return row["role"]
    folders = {p.lower() for p in metadata.parent.relative_to(root).parts}
    return "heldout" if folders & HELD_SPLITS else "train"


def _from_audiofolder(root: Path, metadata: list[Path], problems: list[tuple[str, str]]) -> list[Candidate]:
    found, listed = [], set()
    for table in metadata:
        try:
            rows = _metadata_rows(table)
        except (OSError, UnicodeDecodeError, ValueError, csv.Error) as exc:
            problems.append((str(table), f"cannot read the metadata: {exc}"))
            continue
        for number, row in enumerate(rows, start=2):
            name = row.get("file_name")
            if not isinstance(name, str) or not name:
                problems.append((f"{table}:{number}", "no file_name"))
                continue
            audio_path = (table.parent / name).resolve()
            listed.add(audio_path)
            text = next((row[c] for c in TEXT_COLUMNS if isinstance(row.get(c), str)), None)
            if not audio_path.is_file():
                problems.append((str(table.parent / name), "named in metadata but not there"))
                continue
            found.append(Candidate(str(table.parent / name), text, audio_path.read_bytes, _role(row, table, root),
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
        text = None
        if stem in texts:
            try:
                text = texts[stem].read_text(encoding="utf-8-sig").strip()
            except (OSError, UnicodeDecodeError) as exc:
                problems.append((str(texts[stem]), f"cannot read the transcript: {exc}"))
                continue
        found.append(Candidate(str(audio_path), text, audio_path.read_bytes))
    return found
