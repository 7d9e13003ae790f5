"""Reviewed items out as a Hugging Face `audiofolder` dataset, to train anywhere with the usual tools.

The layout (stable; `datasets.load_dataset("audiofolder", data_dir=DIR)` loads it as is):

    DIR/README.md              what this is and how to load it
    DIR/train/metadata.csv     file_name,transcription,id,is_trained,role,no_speech
    DIR/train/<id>.<ext>       one audio file per item
    DIR/test/metadata.csv      the held-out items and the regression checks (role says which)
    DIR/test/<id>.<ext>

`test` holds exactly what runs here measure on and never train on, so a model trained
elsewhere on `train` is measured on the same speech as one trained here. Exporting fixes
the held-out set first (utils/training_sets.fix_heldout), so later runs keep that split.
Audio is written as stored (raw PCM gets a WAV header, nothing is re-encoded) or, on
request, as 16 kHz mono 16-bit WAV, what Whisper hears.

One item's audio is in memory at a time. A folder export is written beside the target
and renamed into place at the end, so an interrupted export leaves no half dataset.
"""
from __future__ import annotations

import csv
import io
import shutil
import sqlite3
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from utils import audio, audio_facts, csv_cells, database, disk, training_sets
from utils.config import Config

COLUMNS = ("file_name", "transcription", "id", "is_trained", "role", "no_speech")
SPLITS = {"train": "train", "heldout": "test", "regression": "test"}
EXTENSIONS = {"audio/wav": "wav", "audio/flac": "flac", "audio/ogg": "ogg", "audio/mpeg": "mp3"}
CARD = """# S2S Training export

Reviewed speech clips with their corrected transcripts, in the Hugging Face `audiofolder` layout.

    from datasets import load_dataset
    dataset = load_dataset("audiofolder", data_dir="THIS FOLDER")

- `train/`: items to train on; `test/`: the items S2S Training measures on and never trains on
  (`role` is `heldout` for its held-out set, `regression` for the reviewer's regression checks).
- `metadata.csv` columns: `file_name`, `transcription`, `id` (the item's id in the database),
  `is_trained` (1 when the model deployed at export time had learned it), `role`, `no_speech`
  (1 for a clip the reviewer marked as holding no speech: its transcription is empty on purpose).

Bring a model trained on it back with `python main.py model import DIR`.
"""


class ExportError(Exception):
    """The export cannot be written; the message says what to do."""


class Sink(Protocol):
    folder: Path  # where the bytes land on disk, whose free space is checked first

    def write(self, name: str, data: bytes) -> None: ...


class FolderSink:
    def __init__(self, root: Path) -> None:
        self.root = self.folder = root

    def write(self, name: str, data: bytes) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


class ZipSink:
    """Audio is stored, not deflated: it is compressed already or WAV that deflate barely shrinks."""

    def __init__(self, archive: zipfile.ZipFile, prefix: str = "", folder: Path | None = None) -> None:
        self.archive, self.prefix = archive, prefix
        self.folder = folder or Path(tempfile.gettempdir())  # an anonymous spool lives in the temporary folder

    def write(self, name: str, data: bytes) -> None:
        packed = zipfile.ZIP_DEFLATED if name.endswith((".csv", ".md")) else zipfile.ZIP_STORED
        self.archive.writestr(self.prefix + name, data, compress_type=packed)


@dataclass
class ExportReport:
    counts: dict[str, int] = field(default_factory=lambda: {"train": 0, "test": 0})
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{self.counts['train']} train and {self.counts['test']} test items"
        if self.skipped:
            text += f"; {len(self.skipped)} reviewed items left out for their audio"
        return text


def _audio_file(blob: bytes, cfg: Config, wav16k: bool) -> tuple[bytes, str]:
    if wav16k:
        return audio.to_wav(audio.load_for_whisper(blob, cfg.audio), audio.WHISPER_RATE), "wav"
    data, mime = audio.playable(blob, cfg.audio)
    return data, EXTENSIONS[mime]


def write_dataset(conn: sqlite3.Connection, sink: Sink, cfg: Config, untrained_only: bool = False,
                  wav16k: bool = False) -> ExportReport:
    """Write the dataset into `sink`; items whose audio cannot be read are skipped and listed."""
    # Audio never checked is checked first (headers only), so a clip that cannot be heard is never chosen
    # as held out, which would leave the test split one item short of what runs here measure on.
    audio_facts.measure_missing(conn, [r["id"] for r in training_sets.exportable_rows(conn, untrained_only)],
                                cfg.audio)
    with database.transaction(conn):
        training_sets.fix_heldout(conn, cfg.training.heldout_fraction, cfg.training.heldout_min)
    report = ExportReport(skipped=training_sets.unusable_audio(conn, untrained_only))
    tables = {split: io.StringIO() for split in ("train", "test")}
    writers = {split: csv.writer(table, lineterminator="\n") for split, table in tables.items()}
    for writer in writers.values():
        writer.writerow(COLUMNS)
    for row in training_sets.exportable_rows(conn, untrained_only):
        try:
            data, ext = _audio_file(database.get_audio(conn, row["id"]), cfg, wav16k)
        except audio.AudioError as exc:
            report.skipped.append((row["id"], str(exc)))
            continue
        except database.NotFound:  # deleted by the assistant since the list was read
            continue
        split, name = SPLITS[row["role"]], f"{row['id']}.{ext}"
        disk.ensure_room(sink.folder, len(data) + 4096, "the export", "Export to another disk, or free space on "
                         "that one.", cfg.database.keep_free_mb)
        sink.write(f"{split}/{name}", data)
        text = "" if row["no_speech"] else csv_cells.for_spreadsheet(row["transcript"])
        writers[split].writerow((name, text, row["id"], row["is_trained"],
                                 row["role"], int(row["no_speech"])))
        report.counts[split] += 1
    for split, table in tables.items():
        if report.counts[split]:  # an empty split would be a folder without audio, which audiofolder refuses
            sink.write(f"{split}/metadata.csv", table.getvalue().encode("utf-8"))
    sink.write("README.md", CARD.encode("utf-8"))
    return report


def export_to_folder(conn: sqlite3.Connection, target: Path, cfg: Config, untrained_only: bool = False,
                     wav16k: bool = False) -> ExportReport:
    """Export into `target`, a folder that must not exist yet or be empty."""
    target = target.resolve()  # "." has no name to put ".partial" after; its resolved path has
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ExportError(f"{target} already exists and is not an empty folder: choose a new folder to export to")
    partial = target.with_name(target.name + ".partial")
    try:
        shutil.rmtree(partial, ignore_errors=True)  # left by an export that was interrupted
        partial.mkdir(parents=True)
        report = write_dataset(conn, FolderSink(partial), cfg, untrained_only, wav16k)
        if target.exists():
            target.rmdir()
        partial.rename(target)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise ExportError(f"cannot write the export to {target}: {exc.strerror or exc}") from None
    return report
