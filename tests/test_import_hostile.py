"""Imports from sources made to do harm (issue: hardening, third round): each ends with a refusal named in
the report, never a file from outside the source, a hang, a gigabyte read, or a transcript the editor
cannot save again."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.speech import espeak_16k_wav
from utils import database, import_sources, importer
from utils.config import AudioConfig


@pytest.fixture(scope="module")
def wav() -> bytes:
    return espeak_16k_wav("Turn on the porch light.")


@pytest.fixture
def secret(tmp_path: Path, wav: bytes) -> Path:
    """A private file beside the dataset: audio an attacker wants pulled in, and text in a second one."""
    private = tmp_path / "private"
    private.mkdir()
    (private / "secret.wav").write_bytes(wav)
    (private / "passwd.txt").write_text("root:x:0:0:root:/root:/bin/bash", encoding="utf-8")
    return private


def _import(conn, path: Path):
    return importer.import_clips(conn, path, AudioConfig())


def _problems(report) -> dict[str, str]:
    return {Path(source).name: why for source, why in report.problems}


def test_an_audiofolder_reads_nothing_outside_itself(conn, tmp_path, secret, wav):
    data = tmp_path / "dataset"
    data.mkdir()
    (data / "ok.wav").write_bytes(wav)
    (data / "link.wav").symlink_to(secret / "secret.wav")
    (data / "metadata.csv").write_text(
        "file_name,transcription\nok.wav,fine\n../private/secret.wav,up and out\n"
        f"{secret / 'secret.wav'},absolute\nlink.wav,through a link\n", encoding="utf-8")
    report = _import(conn, data)
    assert report.added == 1
    assert [r[0] for r in conn.execute("SELECT transcript FROM s2s_training_data")] == ["fine"]
    refused = [why for source, why in report.problems if "secret.wav" in source or "link.wav" in source]
    assert len(refused) == 3 and all("outside the dataset folder" in why for why in refused)


def test_a_clip_folder_refuses_links_that_leave_it(conn, tmp_path, secret, wav):
    folder = tmp_path / "clips"
    folder.mkdir()
    (folder / "a.wav").write_bytes(wav)
    (folder / "a.txt").write_text("inside", encoding="utf-8")
    (folder / "b.wav").symlink_to(secret / "secret.wav")
    (folder / "c.wav").write_bytes(wav + b"\x00\x00")
    (folder / "c.txt").symlink_to(secret / "passwd.txt")
    (folder / "d.wav").symlink_to(folder / "a.wav")  # a link that stays inside is followed (a duplicate here)
    report = _import(conn, folder)
    problems = _problems(report)
    assert "outside" in problems["b.wav"] and "outside" in problems["c.txt"]
    texts = [r[0] for r in conn.execute("SELECT transcript FROM s2s_training_data")]
    assert texts == ["inside"] and report.duplicates == 1
    assert not any("root:" in (t or "") for t in texts)


def test_metadata_lines_that_are_not_objects_are_reported_one_by_one(conn, tmp_path, wav):
    data = tmp_path / "dataset"
    data.mkdir()
    (data / "a.wav").write_bytes(wav)
    lines = ['["a list"]', "42", "not json", json.dumps({"file_name": "a.wav", "transcription": "kept",
                                                        "role": ["heldout"]})]
    (data / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = _import(conn, data)
    problems = {source.rsplit(":", 1)[1]: why for source, why in report.problems}
    assert problems == {"1": "a JSON list, not an object", "2": "a JSON int, not an object",
                        "3": problems["3"]} and problems["3"].startswith("not JSON")
    assert report.added == 1  # the role that is not a string is no role: this app's own rule decides


def test_a_database_source_that_is_a_view_or_odd_is_refused_or_reported(conn, tmp_path, wav):
    odd = tmp_path / "odd #1?.db"  # '#' and '?' are part of the name, not of a URI
    other = database.connect(odd)
    other.execute(database.SEED_SCHEMA)
    database.insert_item(other, "a good row", wav)
    other.close()
    assert _import(conn, odd).added == 1
    assert not (tmp_path / "odd ").exists()  # no stray file named by the part before the '#'

    view = tmp_path / "view.db"
    other = sqlite3.connect(view)
    other.execute("CREATE VIEW s2s_training_data AS WITH RECURSIVE n(id) AS (SELECT 1 UNION ALL SELECT id + 1 "
                  "FROM n) SELECT id, 'x' AS transcript, x'00' AS audio_blob, 0 AS is_reviewed, 0 AS is_trained, "
                  "NULL AS timestamp FROM n")
    other.close()
    with pytest.raises(import_sources.SourceError, match="is a view, not a table"):
        _import(conn, view)


def test_sizes_are_checked_before_reading(conn, tmp_path, wav, monkeypatch):
    monkeypatch.setattr(import_sources, "MAX_FILE_BYTES", len(wav) - 1)
    folder = tmp_path / "clips"
    folder.mkdir()
    (folder / "big.wav").write_bytes(wav)
    source = tmp_path / "big.db"
    other = database.connect(source)
    other.execute(database.SEED_SCHEMA)
    database.insert_item(other, "big", wav)
    other.close()
    for path, name in ((folder, "big.wav"), (source, "big.db#1")):
        report = _import(conn, path)
        assert report.added == 0 and "MB a clip may" in _problems(report)[name]


def test_transcripts_follow_the_editors_rules(conn, tmp_path, wav):
    folder = tmp_path / "clips"
    folder.mkdir()
    (folder / "a.wav").write_bytes(wav)
    (folder / "a.txt").write_text("turn on\u202e the light\x07", encoding="utf-8")
    (folder / "b.wav").write_bytes(wav + b"\x00\x00")
    (folder / "b.txt").write_text("word " * 2_500, encoding="utf-8")
    report = _import(conn, folder)
    problems = _problems(report)
    assert "2 control or direction-changing character(s) removed" in problems["a.wav"]
    assert "longer than the 10,000 characters the editor can save: refused" in problems["b.wav"]
    assert [r[0] for r in conn.execute("SELECT transcript FROM s2s_training_data")] == ["turn on the light"]


def test_a_database_source_is_read_row_by_row_within_bounds(conn, tmp_path, wav, monkeypatch):
    source = tmp_path / "many.db"
    other = database.connect(source)
    other.execute(database.SEED_SCHEMA)
    for text in ("one", "two", "x" * (import_sources.MAX_TEXT_FILE_BYTES + 50)):
        database.insert_item(other, text, wav)
    other.close()
    report = _import(conn, source)
    assert report.added + report.duplicates == 2  # the same audio twice: the second is a duplicate
    assert "longer than the 10,000 characters" in _problems(report)["many.db#3"]
    monkeypatch.setattr(import_sources, "MAX_ROWS", 2)
    with pytest.raises(import_sources.SourceError, match="more than 2 rows"):
        _import(conn, source)
