"""Fixtures: each test gets a fresh app on its own temporary database with the seed schema."""
from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Iterator

import pytest
from waitress.server import create_server

from training.src.app import create_app
from utils import database
from utils.config import Config, load_config
from tests.speech import espeak_16k_wav, pcm_s16


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    """A config on a temporary database and model folder, ignoring the developer's environment."""
    return load_config(environ={}, overrides={
        "database": {"path": str(tmp_path / "db" / "database.db")},
        "model": {"path": str(tmp_path / "model")},
        # The random test model transcribes the 31 built-in gate clips slowly and learns nothing from
        # them; tests that need the built-in speech turn it on (test_real_model uses it throughout).
        "training": {"builtin_speech": False},
    })


@pytest.fixture
def app(cfg: Config):
    return create_app(cfg)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def conn(app, cfg: Config):
    connection = database.connect(cfg.database.path)
    yield connection
    connection.close()


@pytest.fixture(scope="session")
def speech() -> dict[str, bytes]:
    """A few real clips, synthesized once per test session."""
    return {
        "hello": espeak_16k_wav("Hello there, how are you today?"),
        "weather": espeak_16k_wav("What is the weather like tomorrow?"),
        "pcm": pcm_s16("Turn on the kitchen lights."),
    }


@pytest.fixture
def seeded(conn, speech) -> dict[str, int]:
    """Items as the assistant writes them: WAV, raw PCM, corrupt and empty blobs, a NULL transcript."""
    ids = {
        "wav": database.insert_item(conn, "hello there how are you to day", speech["hello"]),
        "reviewed": database.insert_item(conn, "What is the weather like tomorrow?", speech["weather"], is_reviewed=1),
        "pcm": database.insert_item(conn, "turn on the kitchen light", speech["pcm"]),
        "corrupt": database.insert_item(conn, "corrupt audio", b"RIFF\x00\x00\x00\x00WAVEjunkjunk"),
        "empty": database.insert_item(conn, None, b""),
        "trained": database.insert_item(conn, "already trained", speech["hello"], is_reviewed=1, is_trained=1),
    }
    return ids


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server(app) -> Iterator[str]:
    """The app behind a real waitress server on a free loopback port; yields its base URL."""
    port = free_port()
    server = create_server(app, host="127.0.0.1", port=port, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.close()
    thread.join(timeout=5)
