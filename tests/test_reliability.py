"""The shared database misbehaving: held locks, rows with NULLs the assistant wrote, a missing table or file."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from training.src.app import create_app
from utils import database
from utils.config import load_config

PROJECT = Path(__file__).resolve().parent.parent


def _app(tmp_path, busy_ms: int):
    cfg = load_config(environ={}, overrides={"database": {"path": str(tmp_path / "db.db"), "busy_timeout_ms": busy_ms}})
    return create_app(cfg), cfg


def _hold_write_lock(path, seconds: float) -> threading.Thread:
    ready = threading.Event()

    def hold():
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        ready.set()
        time.sleep(seconds)
        conn.execute("ROLLBACK")
        conn.close()

    thread = threading.Thread(target=hold)
    thread.start()
    ready.wait()
    return thread


def test_a_short_lock_by_the_assistant_is_waited_out(tmp_path, speech):
    app, cfg = _app(tmp_path, busy_ms=5000)
    conn = database.connect(cfg.database.path)
    item = database.insert_item(conn, "before", speech["hello"])
    holder = _hold_write_lock(cfg.database.path, 0.8)
    client = app.test_client()
    assert client.get("/api/data/stats").status_code == 200  # WAL: readers are never blocked
    response = client.put(f"/api/data/{item}", json={"transcript": "after"})
    holder.join()
    assert response.status_code == 200
    assert database.get_item(conn, item)["transcript"] == "after"


def test_a_lock_longer_than_the_timeout_is_a_clear_503_and_nothing_changes(tmp_path, speech):
    app, cfg = _app(tmp_path, busy_ms=200)
    conn = database.connect(cfg.database.path)
    item = database.insert_item(conn, "before", speech["hello"])
    holder = _hold_write_lock(cfg.database.path, 1.5)
    response = app.test_client().put(f"/api/data/{item}", json={"transcript": "after"})
    holder.join()
    assert response.status_code == 503
    body = response.get_json()
    assert body["error"] == "database_unavailable" and "locked" in body["message"]
    assert database.get_item(conn, item)["transcript"] == "before"


def test_a_schema_error_is_not_called_a_busy_database(client, conn, monkeypatch):
    """Issue 33: every OperationalError became a retryable 503; one that no retry cures says so."""
    import sqlite3

    def broken(*args, **kwargs):
        raise sqlite3.OperationalError("no such column: transcript")

    monkeypatch.setattr(database, "list_items_json", broken)
    response = client.get("/api/data")
    body = response.get_json()
    assert response.status_code == 503 and body["error"] == "database_schema"
    assert "no such column" in body["message"] and "Try again" not in body["message"]


def test_rows_with_nulls_from_the_assistant(client, conn):
    conn.execute("INSERT INTO s2s_training_data(transcript, audio_blob, is_reviewed, is_trained, timestamp) "
                 "VALUES (NULL, NULL, NULL, NULL, NULL)")
    items = client.get("/api/data").get_json()
    assert items == [{"id": 1, "transcript": None, "is_reviewed": 0, "is_trained": 0, "timestamp": None,
                      "duration_s": None, "problem": None, "no_speech": False, "unusable": None, "audio_error": None,
                      "regression": 0, "held_out": False}]
    assert [i["id"] for i in client.get("/api/data?reviewed=false").get_json()] == [1]
    assert client.get("/api/data/next").get_json() == {"id": 1}
    body = client.get("/api/data/1").get_json()
    assert body["audio"] == "" and body["audio_error"]
    assert client.get("/api/data/1/audio").status_code == 422
    assert client.put("/api/data/1", json={"transcript": "typed by hand", "is_reviewed": True}).status_code == 200
    assert client.get("/api/data/stats").get_json()["reviewed"] == 1


def test_missing_file_is_created_with_the_seed_schema(tmp_path):
    app, cfg = _app(tmp_path / "new" / "folder", busy_ms=1000)
    assert cfg.database.path.is_file()
    columns = [r[1] for r in database.connect(cfg.database.path).execute("PRAGMA table_info(s2s_training_data)")]
    assert columns == ["id", "transcript", "audio_blob", "is_reviewed", "is_trained", "timestamp"]


def test_an_existing_file_without_the_table_gets_it_and_keeps_its_other_tables(tmp_path):
    path = tmp_path / "db.db"
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE assistant_settings(k TEXT, v TEXT)")
    other.execute("INSERT INTO assistant_settings VALUES ('voice', 'en')")
    other.commit()
    other.close()
    app, cfg = _app(tmp_path, busy_ms=1000)
    assert app.test_client().get("/api/data/stats").get_json()["total"] == 0
    assert sqlite3.connect(path).execute("SELECT v FROM assistant_settings").fetchone() == ("en",)


def test_table_dropped_under_the_running_app_is_a_503_not_a_500(client, conn):
    conn.execute("DROP TABLE s2s_training_data")
    for response in (client.get("/api/data"), client.get("/api/data/stats"), client.get("/api/health")):
        assert response.status_code == 503 and response.is_json
        assert "Try again" not in response.get_json().get("message", "")  # no retry brings a table back


def _start(db: Path) -> subprocess.CompletedProcess:
    """`python main.py` as a user starts it; it must stop at once with one line, not serve or trace back."""
    return subprocess.run([sys.executable, "main.py", "--db", str(db), "--port", "0"], cwd=PROJECT,
                          capture_output=True, text=True, timeout=120)


def test_a_file_that_is_not_a_database_stops_the_start_with_one_line(tmp_path):
    junk = tmp_path / "database.db"
    junk.write_bytes(b"these are not the bytes of an SQLite file " * 100)
    done = _start(junk)
    assert done.returncode == 2
    assert "file is not a database" in done.stderr and "check [database].path" in done.stderr
    assert "Traceback" not in done.stderr
    assert junk.read_bytes() == b"these are not the bytes of an SQLite file " * 100  # untouched


def test_a_read_only_database_stops_the_start_with_one_line(tmp_path):
    path = tmp_path / "database.db"
    conn = database.connect(path)
    conn.execute(database.SEED_SCHEMA)  # as the assistant creates it: not in WAL mode yet
    database.insert_item(conn, "hello", b"")
    conn.close()
    before = path.read_bytes()
    # Tests run as root, for whom file modes do not apply; the immutable attribute does.
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not permitted here, so no file can be made read-only for root")
    try:
        done = _start(path)
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    assert done.returncode == 2
    assert "readonly" in done.stderr and "write access" in done.stderr and "Traceback" not in done.stderr
    assert path.read_bytes() == before
