"""Killing the real server process mid-write leaves a consistent database that the next start serves."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.conftest import free_port
from utils import database

ROOT = Path(__file__).resolve().parent.parent


def _start(db: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--db", str(db), "--model", str(db.parent / "m"),
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1)
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def _put(port: int, item: int, text: str) -> int:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/data/{item}", method="PUT",
                                 data=json.dumps({"transcript": text, "is_reviewed": True}).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status
    except (urllib.error.URLError, ConnectionError, OSError):
        return 0


def test_sigkill_during_writes(tmp_path, speech):
    db = tmp_path / "db.db"
    database.init_db(db)
    conn = database.connect(db)
    ids = [database.insert_item(conn, f"original {i}", speech["hello"]) for i in range(40)]
    port = free_port()
    server = _start(db, port)
    acknowledged: dict[int, str] = {}

    def writer():
        for round_ in range(1000):
            for item in ids:
                text = f"edit {round_} of {item}"
                if _put(port, item, text) == 200:
                    acknowledged[item] = text
                elif server.poll() is not None:
                    return

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(1.5)
    server.kill()  # SIGKILL on Linux, TerminateProcess on Windows: no chance to clean up
    server.wait()
    thread.join()
    assert acknowledged, "no write completed before the kill"

    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # Every acknowledged write is in the database: the stored round is the acknowledged one, or a
    # later one whose reply the kill cut off. Nothing is half-written.
    def round_of(text: str) -> int:
        return int(text.split()[1])

    for item, text in acknowledged.items():
        current = database.get_item(conn, item)["transcript"]
        assert current.endswith(f" of {item}") and round_of(current) >= round_of(text)
    server = _start(db, port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/data/stats", timeout=5) as resp:
            assert json.load(resp)["total"] == 40
    finally:
        server.kill()
        server.wait()
