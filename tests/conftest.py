"""Fixtures: each test gets a fresh app on its own temporary database with the seed schema."""
from __future__ import annotations

import os

# Workers of pytest-xdist (pyproject.toml runs the suite on up to MAX_WORKERS of them) share the cores:
# PyTorch and OpenMP in each take their share, not every core, or the workers' threads fight over
# them and all run several times slower. Set before anything imports torch (the imports below do);
# subprocesses inherit it.
MAX_WORKERS = 4
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
if WORKERS > 1:
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // WORKERS))

import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from waitress.server import create_server

from stt.models.model_format import detect_format
from tests.speech import espeak_16k_wav, pcm_s16
from training.src.app import create_app
from utils import database, training_sets
from utils.config import Config, load_config

if WORKERS > 1:
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(autouse=True)
def no_warm_up_between_tests(monkeypatch) -> Iterator[None]:
    """stt.runs.warm keeps process state (the warm-up it started, whether this process serves the app):
    a test that runs `main.py serve` must not have later tests' runs start warm-ups that outlive them."""
    from stt.runs import warm

    monkeypatch.setattr(warm, "_serving", False)
    yield
    warm.stop()


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


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """One worker per core, at most MAX_WORKERS: each loads PyTorch and a model or two."""
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that drives Chromium is slow (seconds each): `-m "not slow"` leaves the pages out."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, driven by Playwright (imported here so tests without pages do not need it)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # Debian's chromium, which run_tests.sh installs; on Windows, S2S_CHROMIUM names chrome.exe.
        chromium = p.chromium.launch(executable_path=os.environ.get("S2S_CHROMIUM", "/usr/bin/chromium"),
                                     args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, live_server):
    """A desktop-sized page on the live server; the test fails on any JavaScript error or CSP violation."""
    context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and "Content Security Policy" in msg.text else None)
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


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


# Sentences of a small smart-home domain, for runs of the tiny test model (tests/test_train_api.py and others).
SENTENCES = ["Turn on the Kwintara lamp.", "Ask Zorblax to vacuum.", "Dim the Velmora heater.",
             "Play music on the Orvane speaker.", "Lock the front door.", "Set a timer for ten minutes.",
             "What is the weather today?", "Call Ysolde after lunch."]


@pytest.fixture(scope="module")
def clips() -> list[bytes]:
    return [espeak_16k_wav(s) for s in SENTENCES]


@pytest.fixture
def trainable(cfg, conn, clips):
    """A tiny model at the configured path, 8 reviewed items (3 held out) and 2 unreviewed ones."""
    from tests import tiny_whisper

    tiny_whisper.build(cfg.model.path)
    cfg.training.epochs = 2
    cfg.training.batch_size = 4
    reviewed = [database.insert_item(conn, text, clip, is_reviewed=1) for text, clip in zip(SENTENCES, clips)]
    unreviewed = [database.insert_item(conn, "not yet reviewed", clips[0]) for _ in range(2)]
    heldout = training_sets.heldout_ids(conn, cfg.training.heldout_fraction, cfg.training.heldout_min)
    return SimpleNamespace(reviewed=reviewed, unreviewed=unreviewed, heldout=heldout,
                           train=[i for i in reviewed if i not in heldout])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server(app) -> Iterator[str]:
    """The app behind a real waitress server on a free loopback port; yields its base URL."""
    port = free_port()
    # poll(), not select(): closing the server from this thread while its loop waits then ends the loop
    # quietly, where select() raised "Bad file descriptor" in the loop's thread.
    server = create_server(app, host="127.0.0.1", port=port, threads=4, asyncore_use_poll=True)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.close()
    thread.join(timeout=5)


def clips_at(wer: float, clips: int = 10, words: int = 10) -> list[tuple[int, int]]:
    """Per-clip (errors, words) of `clips` clips, every one at `wer`: a change made of them is no chance."""
    return [(round(wer * words), words)] * clips


def run_in_process(cfg) -> dict:
    """One training run in this process, through the worker's real steps (no child process to wait on)."""
    from stt.runs import jobs, worker

    return worker.run(jobs.start_record(cfg)["job_id"], cfg)


@pytest.fixture
def fake_engine(monkeypatch):
    """Replaces fine_tune and the measuring of both models: chosen held-out WERs before and after (`wer`),
    other result fields (`result`), a hook while "training"; the job, export, store and database are real."""
    import stt.finetune.engine as engine
    from stt.assistant.evaluation import ClipScore
    from stt.assistant.profile import fast_path
    from stt.runs import measuring

    fake = SimpleNamespace(wer=(0.5, 0.3), during=lambda: None, seen=None, result={}, measured=None)

    def fine_tune(model_dir, out_dir, train, watched, cfg, progress, should_stop, **extra):
        fake.seen = SimpleNamespace(format=detect_format(model_dir), train=[s.id for s in train],
                                    heldout=[s.id for s in watched.get("heldout", [])],
                                    regression=[s.text for s in watched.get("regression", [])],
                                    epochs=cfg.epochs, rehearsal=[s.id for s in extra["rehearsal"]],
                                    ordinary=len(watched.get("ordinary", [])))
        progress(engine.Progress("training", 1, 2, 0.5))
        fake.during()
        if should_stop():
            raise engine.Cancelled("stopped")
        shutil.copytree(model_dir, out_dir)
        return engine.EngineResult(**{"mode": "decoder", "device": "cpu", "max_epochs": 1, "steps": 2,
                                      "train_items": len(train), "train_loss": 0.4, "train_seconds": 0.1,
                                      **fake.result})

    def measure(cfg, sets, candidate, report, clock=None):
        fake.measured = {name: len(group) for name, group in sets.items() if group}
        held = sets.get("heldout") or []

        def scores(wer: float) -> list[ClipScore]:
            return [ClipScore(e, w, "") for e, w in clips_at(wer)]
        report("after", 1, 1)
        return measuring.Measurement(fast_path(), {"heldout": list(held)},
                                     {"heldout": {"before": scores(fake.wer[0]), "after": scores(fake.wer[1])}})

    monkeypatch.setattr(engine, "fine_tune", fine_tune)
    monkeypatch.setattr(measuring, "measure", measure)
    return fake
