"""`main.py serve` as a user starts it, and its API as the pages call it, for the checks that live with the app.

The small-disk check and the twenty-runs check drive the real server the way the dashboard does: start it,
wait for its port, click Train through the API and poll the run's status to its end.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RUN_WAIT_S = 900


def call(port: int, method: str, path: str, body: Any = None, into: Path | None = None) -> tuple[int, Any]:
    """(status, JSON answer), or with `into` the answer's body written to that file and its size."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=600) as answer:
            if into is not None:
                with into.open("wb") as f:
                    shutil.copyfileobj(answer, f)
                return answer.status, {"bytes": into.stat().st_size}
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as exc:
        text = exc.read()
        try:
            return exc.code, json.loads(text)
        except ValueError:
            return exc.code, {"body": text[:300].decode(errors="replace")}


def wait(what: Any, seconds: float, every_s: float = 1) -> Any:
    """What `what()` returns once it is truthy, or None after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(every_s)
    return None


def serve(db: Path, model: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, int]:
    """`main.py serve` on a free port, its output dropped, once its port answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "main.py", "serve", "--db", str(db), "--model", str(model),
                               "--port", str(port)], cwd=ROOT, env={**os.environ, **(env or {})},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait(lambda: _port_open(port), 60, 0.2)
    return server, port


def click(port: int) -> tuple[str, dict[str, Any] | None]:
    """A Train click: what the API answered, and the run's status at its end (None when refused or still
    running after RUN_WAIT_S)."""
    code, answer = call(port, "POST", "/api/train", {})
    said = f"{code}: {answer.get('message') or answer.get('error')}"
    if code != 202:
        return said, None
    return said, wait(lambda: _ended(port), RUN_WAIT_S)


def _ended(port: int) -> dict[str, Any] | None:
    """The run's status once it is no longer active, else None."""
    status = call(port, "GET", "/api/train/status")[1]
    return None if status.get("active") else status


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
