"""The assistant inserts rows every few milliseconds while several reviewers read and save through the real server.

`S2S_STRESS=1` runs it at the scale of the attack recorded in docs/reliability.md
(9,000 inserted rows, 8 reviewers saving 10,400 items) instead of CI's.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests import tiny_whisper
from tests.writer import insert_rows
from utils import database

STRESS = os.environ.get("S2S_STRESS") == "1"
INSERTS = 9000 if STRESS else 400
REVIEWERS = 8 if STRESS else 4
EDITS_EACH = 1300 if STRESS else 15


def call(method: str, url: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, dict, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null"), resp.headers
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null"), err.headers


@pytest.mark.slow  # a real run under load
def test_reviewers_the_assistant_and_training_at_once(live_server, cfg, conn, speech):
    clip = speech["pcm"][:8000] if STRESS else speech["hello"]  # 10,400 full clips would be a gigabyte
    own = [database.insert_item(conn, f"item {i}", clip) for i in range(REVIEWERS * EDITS_EACH)]
    trainable = [database.insert_item(conn, f"reviewed {i}", speech["weather"], is_reviewed=1) for i in range(8)]
    tiny_whisper.build(cfg.model.path)
    cfg.training.epochs = 3
    status, started, _ = call("POST", f"{live_server}/api/train")
    assert status == 202, started
    ctx = multiprocessing.get_context("spawn")  # as on Windows: no fork
    with ctx.Pool(1) as pool:
        writer = pool.apply_async(insert_rows, (str(cfg.database.path), INSERTS, speech["pcm"][:8000], 0.003))
        failures: list[str] = []

        def reviewer(ids: list[int]) -> None:
            for item_id in ids:
                status, _, _ = call("GET", f"{live_server}/api/data?limit=50&reviewed=false")
                if status != 200:
                    failures.append(f"list {status}")
                status, item, headers = call("GET", f"{live_server}/api/data/{item_id}?audio=0")
                if status != 200:
                    failures.append(f"get {status}")
                    continue
                status, body, _ = call("PUT", f"{live_server}/api/data/{item_id}",
                                       {"transcript": f"corrected {item_id}", "is_reviewed": True},
                                       {"If-Match": headers["ETag"]})
                if status != 200:
                    failures.append(f"put {status} {body}")
                status, _, _ = call("GET", f"{live_server}/api/data/stats")
                if status != 200:
                    failures.append(f"stats {status}")

        threads = [threading.Thread(target=reviewer, args=(own[i::REVIEWERS],)) for i in range(REVIEWERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert writer.get(timeout=1800 if STRESS else 120) == INSERTS

    assert failures == []  # in particular no 503 "database is locked"
    deadline = time.monotonic() + 240
    while (run := call("GET", f"{live_server}/api/train/{started['job_id']}")[1])["state"] not in ("done", "failed"):
        assert time.monotonic() < deadline, run
        time.sleep(0.5)
    assert run["state"] == "done", run["message"]
    trained = {r[0] for r in conn.execute("SELECT id FROM s2s_training_data WHERE is_trained = 1")}
    assert trained <= set(trainable)
    rows = conn.execute("SELECT count(*) FROM s2s_training_data "
                        "WHERE transcript LIKE 'assistant insert %'").fetchone()[0]
    assert rows == INSERTS
    for item_id in own:
        item = database.get_item(conn, item_id)
        assert item["transcript"] == f"corrected {item_id}" and item["is_reviewed"] == 1
    stats = call("GET", f"{live_server}/api/data/stats")[1]
    assert stats["total"] == len(own) + len(trainable) + INSERTS
    assert stats["reviewed"] == len(own) + len(trainable)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
