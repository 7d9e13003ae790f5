"""`main.py demo`: real speech clips in an empty database, and the offline demo model."""
from __future__ import annotations

import pytest

from main import main
from utils import audio, database, demo
from utils.config import AudioConfig


def test_demo_fills_an_empty_database_once(tmp_path, capsys):
    db, model = tmp_path / "db.db", tmp_path / "models" / "distil-small.en"
    assert main(["demo", "--create", "--db", str(db), "--model", str(model)]) == 0
    conn = database.connect(db)
    rows = conn.execute("SELECT transcript, audio_blob, is_reviewed FROM s2s_training_data").fetchall()
    assert len(rows) == len(demo.DEMO_CLIPS)
    for _transcript, blob, reviewed in rows:
        facts = audio.info(blob, AudioConfig())
        assert facts.sample_rate == 16000 and 0.5 < facts.duration_s < 8 and reviewed == 0
    # The initial transcripts are deliberately imperfect: most differ from what was said.
    said = {s.lower().rstrip(".?") for s, _ in demo.DEMO_CLIPS}
    assert sum(t not in said for t, _, _ in rows) > len(rows) // 2
    # The demo model is tiny.en, so it goes in a folder of that name, never into distil-small.en's.
    assert not model.exists() and (tmp_path / "models" / "tiny.en" / "model.bin").is_file()
    assert "installed Whisper tiny.en" in capsys.readouterr().out
    # A second run refuses to add to a database that has items, says how to anyway, and leaves the model alone.
    assert main(["demo", "--db", str(db), "--model", str(model)]) == 1
    assert "already holds" in (err := capsys.readouterr().err) and "--force" in err
    assert conn.execute("SELECT count(*) FROM s2s_training_data").fetchone()[0] == len(demo.DEMO_CLIPS)


def test_demo_model_never_overwrites(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "mine.txt").write_text("user's model")
    assert demo.install_demo_model(model) is False
    assert [p.name for p in model.iterdir()] == ["mine.txt"]


def test_missing_espeak_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(demo.shutil, "which", lambda name: None)
    with pytest.raises(demo.DemoError, match="espeak-ng"):
        demo.synthesize("hello", "en-us", 160)


def test_a_later_plain_start_keeps_the_demo_model(tmp_path, capsys):
    # Issue: after `--demo` and a Train click, a plain start said "No model found" and lost the versions.
    configured, installed = tmp_path / "models" / "distil-small.en", tmp_path / "models" / "tiny.en"
    assert demo.install_demo_model(installed)
    assert demo.model_in_use(configured) == installed
    assert main(["model", "list", "--model", str(configured)]) == 0
    out = capsys.readouterr().out
    assert f"using Whisper tiny.en, the demo model, at {installed}" in out
    assert "deployed: Whisper tiny.en" in out and "deployed: no model" not in out
    # A model of the user's own in the configured folder wins from then on.
    configured.mkdir()
    (configured / "model.bin").write_bytes(b"x")
    assert demo.model_in_use(configured) == configured
