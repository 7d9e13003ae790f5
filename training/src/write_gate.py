"""Writes that wait on the assistant's database lock never hold every server thread.

While the assistant holds SQLite's write lock, each write request waits up to the busy timeout. Sixteen
writes sent during a 60 s lock once took all eight of waitress's threads, and a page load waited 9.6 s
behind them. So at most WRITERS write requests run at once; one more is answered 503 at once with
Retry-After, and reads and pages always find a thread.
"""
from __future__ import annotations

import threading

from flask import Flask, g, request

from training.src.errors import ApiError

# Of the server's 8 threads (main.py serve), the most that writes may hold; the rest stay for reads and pages.
WRITERS = 4
RETRY_AFTER_S = 2
_WRITES = ("POST", "PUT", "PATCH", "DELETE")


def init_app(app: Flask, writers: int = WRITERS) -> None:
    gate = threading.BoundedSemaphore(writers)

    @app.before_request
    def _enter() -> None:
        if request.method not in _WRITES or not request.path.startswith("/api/"):
            return
        if not gate.acquire(blocking=False):
            raise ApiError(503, "busy", f"{writers} changes are already waiting on the database (the assistant may "
                           "be holding it): try again in a moment.", retry_after_s=RETRY_AFTER_S)
        g.s2s_write_gate = gate

    @app.teardown_request
    def _leave(_exc: BaseException | None = None) -> None:
        held = g.pop("s2s_write_gate", None)
        if held is not None:
            held.release()
