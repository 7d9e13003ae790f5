"""One database connection per request, as in Flask's tutorial: opened on first use, closed on teardown."""
from __future__ import annotations

import sqlite3

from flask import Flask, g

from training.src import current
from utils import database


def get_db() -> sqlite3.Connection:
    if "db" not in g:
        cfg = current.config()
        g.db = database.connect(cfg.database.path, cfg.database.busy_timeout_ms)
    return g.db


def close_db(_exc: BaseException | None = None) -> None:
    conn = g.pop("db", None)
    if conn is not None:
        conn.close()


def init_app(app: Flask) -> None:
    app.teardown_appcontext(close_db)
