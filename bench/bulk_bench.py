"""Find and replace over 100,000 items: preview and apply through the real app, against plain SQL.

    .venv/bin/python bench/bulk_bench.py [--rows 100000]

Each case runs on a fresh copy of the same database (16 KB blobs, so the rows are as far apart as the
assistant's), through the Flask test client. The plain alternative is the one UPDATE a first version would
run: `replace()` over every row that LIKE finds, with no whole-word rule, no preview, no versions and no
undo. Prints a table and writes it into "## Find and replace" of docs/performance.md.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.api_bench import build  # noqa: E402
from bench.report import DOC, machine, write_section  # noqa: E402
from training.src.app import create_app  # noqa: E402
from utils import database  # noqa: E402
from utils.config import load_config  # noqa: E402

# api_bench's vocabulary: "lamp" is in about half the transcripts, "kitchen lamp" in few.
CASES = [("lamp", "light", "a common word"), ("kitchen lamp", "kitchen light", "a rare phrase")]


def _client(db: Path):
    cfg = load_config(environ={}, overrides={"database": {"path": str(db)}})
    return create_app(cfg).test_client()


def _seconds(fn) -> tuple[float, object]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    rows = ["| search | matches | preview (s) | apply all (s) | plain UPDATE (s) | apply / plain | undo (s) |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "source.db"
        build(source, args.rows, 16)
        for find, replace, what in CASES:
            body = {"find": find, "replace": replace, "include_reviewed": True}
            db = Path(tmp) / "run.db"
            shutil.copy(source, db)
            client = _client(db)
            _seconds(lambda: client.get("/api/data/stats"))  # open and migrate outside the timing
            preview_s, found = _seconds(lambda: client.post("/api/bulk/preview", json=body).get_json())
            tag = found["tag"]
            apply_s, done = _seconds(lambda: client.post("/api/bulk/apply", json={**body, "all": True},
                                                         headers={"If-Match": f'"{tag}"'}).get_json())
            assert done["changed"] == found["total"], done
            undo_s, undone = _seconds(lambda: client.post(f"/api/bulk/{done['batch_id']}/undo").get_json())
            assert undone["restored"] == found["total"], undone
            shutil.copy(source, db)
            conn = database.connect(db)
            plain_s, _ = _seconds(lambda: conn.execute(
                f"UPDATE {database.TABLE} SET transcript = replace(transcript, ?, ?) WHERE transcript LIKE ?",
                (find, replace, f"%{find}%")))
            conn.close()
            rows.append(f"| {what} (“{find}”) | {found['total']:,} | {preview_s:.2f} | {apply_s:.2f} | "
                        f"{plain_s:.2f} | {apply_s / plain_s:.1f}x | {undo_s:.2f} |")
            print(rows[-1], flush=True)
    body = (f"Run `python bench/bulk_bench.py` on {machine()}. {args.rows:,} items (16 KB blobs), one search "
            "over all of them, reviewed items included; apply takes every match as one batch, guarded by the "
            "preview's tag; the plain UPDATE has no whole-word rule, no versions and no undo.\n\n" + "\n".join(rows)
            + "\n\nThe preview answers from the covering index. Writing is bound by SQLite, not by the batch: the "
            "seed's table keeps the transcript in the same row as the audio, so changing a transcript rewrites "
            "the row with its blob, and the plain UPDATE pays the same (see apply / plain).")
    print(body)
    if not args.no_write:
        write_section(DOC, "Find and replace", body)


if __name__ == "__main__":
    main()
