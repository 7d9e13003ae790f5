"""The app as a user reaches it from another computer: `main.py --host 0.0.0.0` with a token, in Chromium.

The server is started the way the user starts it, bound beyond loopback, and
the browser reaches it at this machine's network address (loopback only where
the machine has none: the browser's Origin header is the same either way).
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import free_port
from utils import database

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "lan-token-correct-horse-battery"


def network_address() -> str:
    """This machine's address on its network (a UDP connect sends nothing), or loopback without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            return probe.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def wait_for_port(host: str, port: int, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited: {process.stdout.read()}")
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the server did not start listening on {host}:{port}")


@pytest.fixture
def lan_server(tmp_path: Path, speech) -> Iterator[tuple[str, Path]]:
    db = tmp_path / "database.db"
    database.init_db(db)
    conn = database.connect(db)
    database.insert_item(conn, "turn on the kitchen lite", speech["pcm"])
    conn.close()
    host, port = network_address(), free_port()
    server = subprocess.Popen(
        [sys.executable, "main.py", "--host", "0.0.0.0", "--port", str(port), "--db", str(db),
         "--model", str(tmp_path / "model")],
        cwd=ROOT, env={**os.environ, "S2S_SERVER_ACCESS_TOKEN": TOKEN},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_for_port(host, port, server)
        yield f"http://{host}:{port}", db
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def other_site(lan_server) -> Iterator[str]:
    """A page on another origin of the same host (same site, so the SameSite cookie still goes along),
    which posts a form to the app as soon as it loads."""
    base, _ = lan_server
    page = (f'<form method="post" action="{base}/api/train"><input name="mode" value="full"></form>'
            "<script>document.forms[0].submit()</script>").encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args) -> None:
            pass

    host = base.split("//")[1].rsplit(":", 1)[0]
    httpd = HTTPServer((host, 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://{host}:{httpd.server_port}/"
    httpd.shutdown()


def test_log_in_from_another_computer_and_review(browser, lan_server, other_site):
    base, db = lan_server
    context = browser.new_context(base_url=base)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto("/editor")
    expect(page).to_have_url(f"{base}/login?next=/editor")
    page.fill("#token", "not the token at all")
    page.click("button[type=submit]")
    expect(page.locator(".login-error")).to_have_text("That access token is not right.")
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    # The editor then names the item it opened in the address (?id=1), at once or a moment later.
    expect(page).to_have_url(re.compile(re.escape(f"{base}/editor") + r"(\?id=\d+)?$"))
    expect(page.locator("#transcript")).to_have_value("turn on the kitchen lite")
    # A save is a POST from the page's own script: it must pass the cross-origin guard too.
    page.locator("#transcript").fill("Turn on the kitchen light.")
    page.keyboard.press("Control+s")
    expect(page.locator("#save-state")).to_have_text("Saved ✓")
    conn = database.connect(db)
    assert conn.execute("SELECT transcript FROM s2s_training_data").fetchone()[0] == "Turn on the kitchen light."

    # Another website on the same host, with the login cookie in the browser, still cannot change anything.
    page.goto(other_site)
    expect(page.locator("body")).to_contain_text("cross_origin")
    assert conn.execute("SELECT count(*) FROM s2s_app_train_runs").fetchone()[0] == 0
    conn.close()
    # Signing out on a shared computer: the cookie goes, and the pages ask for the token again.
    page.goto("/")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{base}/login")
    page.goto("/editor")
    expect(page).to_have_url(f"{base}/login?next=/editor")
    context.close()
    assert errors == []
