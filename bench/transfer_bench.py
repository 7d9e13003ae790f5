"""Export and import at scale: time and peak memory of `main.py export` and `main.py import`.

Each measured step runs alone in a fresh process, so its peak RSS is its own. The export is
compared with the plain way (read every row, write each blob to a file and one CSV, with no
checks), to show what decoding headers, fixing the held-out set and the atomic rename cost.
Clips are distinct 1 s tones (16 kHz 16-bit WAV, 32 KB): what is measured is moving bytes and
rows, for which speech and tones cost the same.
"""
from __future__ import annotations

import argparse
import csv
import multiprocessing
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import DOC, machine, peak_rss_mb, write_section  # noqa: E402
from utils import audio, database  # noqa: E402
from utils.config import load_config  # noqa: E402

RATE = 16000


def _fill(path: Path, items: int) -> None:
    database.init_db(path)
    conn = database.connect(path)
    t = np.arange(RATE, dtype=np.float32) / RATE
    with database.transaction(conn):
        for n in range(items):
            tone = 0.3 * np.sin(2 * np.pi * (200 + n % 2000 + n / 7919) * t)  # every clip's bytes differ
            database.insert_item(conn, f"clip number {n} of the benchmark", audio.to_wav(tone, RATE), is_reviewed=1)
    conn.close()


def _config(db: Path):
    return load_config(environ={}, overrides={"database": {"path": str(db)}})


def _export(db: str, out: str) -> dict:
    from utils import export

    cfg = _config(Path(db))
    conn = database.connect(Path(db))
    started = time.perf_counter()
    report = export.export_to_folder(conn, Path(out), cfg)
    return {"seconds": time.perf_counter() - started, "rss": peak_rss_mb(), "items": sum(report.counts.values())}


def _plain(db: str, out: str) -> dict:
    """The plain alternative: every row in one pass, each blob to a file, one CSV, nothing checked."""
    conn = database.connect(Path(db))
    started = time.perf_counter()
    folder = Path(out)
    folder.mkdir()
    with (folder / "metadata.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(("file_name", "transcription"))
        for item_id, text, blob in conn.execute("SELECT id, transcript, audio_blob FROM s2s_training_data"):
            (folder / f"{item_id}.wav").write_bytes(blob)
            writer.writerow((f"{item_id}.wav", text))
    return {"seconds": time.perf_counter() - started, "rss": peak_rss_mb()}


def _import(db: str, source: str) -> dict:
    from utils import importer

    cfg = _config(Path(db))
    database.init_db(Path(db))
    conn = database.connect(Path(db))
    started = time.perf_counter()
    report = importer.import_clips(conn, Path(source), cfg.audio, reviewed=True)
    return {"seconds": time.perf_counter() - started, "rss": peak_rss_mb(), "items": report.added}


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def _growth(peaks: list[tuple[int, float, float]]) -> str:
    (few, export_few, import_few), (many, export_many, import_many) = peaks[0], peaks[-1]
    return (f"From {few:,} to {many:,} items, peak RSS went {export_few:.0f} → {export_many:.0f} MB for the export "
            f"and {import_few:.0f} → {import_many:.0f} MB for the import: the export holds one clip's audio at a "
            "time and the import one batch (at most 32 MB); only the metadata, text, grows with the items.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="item counts, comma-separated")
    parser.add_argument("--no-write", action="store_true", help="print the section only")
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")

    def alone(fn, *fn_args) -> dict:
        with context.Pool(1) as pool:
            return pool.apply(fn, fn_args)

    rows = ["| items | export (s) | plain copy (s) | export / plain | export peak RSS (MB) | import (s) "
            "| import peak RSS (MB) | dataset (MB) |", "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    header, peaks = machine(), []
    for items in (int(n) for n in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            db, out = Path(tmp) / "source.db", Path(tmp) / "dataset"
            _fill(db, items)
            exported = alone(_export, str(db), str(out))
            plain = alone(_plain, str(db), str(Path(tmp) / "plain"))
            shutil.rmtree(Path(tmp) / "plain")
            imported = alone(_import, str(Path(tmp) / "target.db"), str(out))
            assert exported["items"] == imported["items"] == items, (exported, imported)
            rows.append(f"| {items:,} | {exported['seconds']:.1f} | {plain['seconds']:.1f} | "
                        f"{exported['seconds'] / plain['seconds']:.1f}x | {exported['rss']:.0f} | "
                        f"{imported['seconds']:.1f} | {imported['rss']:.0f} | {_size_mb(out):.0f} |")
            print(rows[-1], flush=True)
            peaks.append((items, exported["rss"], imported["rss"]))
    body = (f"Run `python bench/transfer_bench.py` on {header}. Distinct 1 s clips (16 kHz WAV), all reviewed; "
            "each step alone in a fresh process (peak RSS includes the interpreter and the libraries it loads). "
            "Export writes the audiofolder dataset to a folder; the plain copy writes the same blobs and one CSV "
            "with no checks; import reads the exported dataset into an empty database, decoding every clip.\n\n"
            + "\n".join(rows) + "\n\n" + _growth(peaks))
    print(body)
    if not args.no_write:
        write_section(DOC, "Export and import", body)


if __name__ == "__main__":
    main()
