"""Writes waiting on the assistant's lock never take every server thread (issue 32, item 7: sixteen writes
during a 60 s lock tied up all eight threads and a page load waited behind them). A real waitress server
with main.py's eight threads, a real second connection holding the write lock."""
from __future__ import annotations

import threading
import time

from waitress.server import create_server

from tests.conftest import free_port
from tests.test_concurrency import call
from training.src.app import create_app
from training.src.write_gate import WRITERS
from utils import database


def test_writes_during_the_assistants_lock_leave_threads_for_pages(cfg, conn, speech):
    cfg.database.busy_timeout_ms = 4000
    texts = {database.insert_item(conn, f"item {n}", speech["hello"]): f"item {n}" for n in range(16)}
    ids = list(texts)
    port = free_port()
    server = create_server(create_app(cfg), host="127.0.0.1", port=port, threads=8,  # as main.py serve
                           asyncore_use_poll=True)  # closed from here without "Bad file descriptor" (conftest)
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    base = f"http://127.0.0.1:{port}"
    answers: list[tuple[int, dict]] = []
    assistant = database.connect(cfg.database.path)
    assistant.execute("BEGIN IMMEDIATE")
    try:
        writers = [threading.Thread(target=lambda i=i: answers.append(call(
            "PUT", f"{base}/api/data/{i}", {"transcript": f"edited {i}"})[:2])) for i in ids]
        for writer in writers:
            writer.start()
        time.sleep(1.5)  # every write has reached the server
        page = call("GET", f"{base}/api/data/stats")
        answered_before_the_page = list(answers)
    finally:
        assistant.execute("ROLLBACK")
        assistant.close()
    for writer in writers:
        writer.join(30)
    server.close()
    serving.join(timeout=5)
    # The read answered while WRITERS writes still waited on the lock; the others were told at once to retry.
    assert page[0] == 200
    assert len(answered_before_the_page) == 16 - WRITERS
    assert all(status == 503 and body["error"] == "busy" for status, body in answered_before_the_page)
    assert len(answers) == 16 and all(status in (200, 503) for status, _ in answers)
    # Nothing half-done: each item holds either its old text or the edit that was answered 200.
    edited = {int(body["id"]) for status, body in answers if status == 200}
    for i in ids:
        assert database.get_item(conn, i)["transcript"] == (f"edited {i}" if i in edited else texts[i])
