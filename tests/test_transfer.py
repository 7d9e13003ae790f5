"""The user's data out and in: export as an audiofolder dataset that `datasets` loads as is, and import
from such a dataset, a folder of clips with .txt transcripts, or another database."""
from __future__ import annotations

import csv
import io
import sqlite3
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from main import main
from tests.speech import espeak_16k_wav, pcm_s16
from utils import audio, database, training_sets
from utils.config import AudioConfig

# Sentences of different shapes in three voices and three speeds, so no two clips are alike.
SENTENCES = [
    "Remind me to call the dentist at nine.", "What time does the bakery on Elm Street open?",
    "Turn the hallway lights down to twenty percent.", "Play something quiet by the river band.",
    "How far is it from Leeds to York by train?", "Add oat milk and two lemons to the list.",
    "Set a timer for eleven minutes.", "Is it going to rain in Porto on Saturday?",
    "Read me the last message from Aunt Margit.", "Lock the back door and close the garage.",
]
VOICES = ["en-us", "en-gb", "en-gb-scotland"]


def _clip(number: int) -> bytes:
    text = SENTENCES[number]
    return pcm_s16(text) if number == 3 else espeak_16k_wav(text, VOICES[number % 3], 140 + 15 * (number % 3))


@pytest.fixture(scope="module")
def clips() -> list[bytes]:
    return [_clip(n) for n in range(len(SENTENCES))]


@pytest.fixture
def filled(conn, clips) -> dict[str, object]:
    """Ten reviewed items (two trained, one a regression check), one unreviewed, one reviewed with bad audio."""
    ids = [database.insert_item(conn, text, clips[n], is_reviewed=1, is_trained=int(n in (1, 2)))
           for n, text in enumerate(SENTENCES)]
    database.update_item(conn, ids[4], regression=True)
    database.insert_item(conn, "not reviewed yet", clips[0][:-2000])
    bad = database.insert_item(conn, "bad audio", b"RIFF\x00\x00\x00\x00WAVEjunkjunk", is_reviewed=1)
    return {"ids": ids, "bad": bad}


def _cli(cfg, *args: str) -> int:
    return main(["--db", str(cfg.database.path), "--model", str(cfg.model.path), *args])


def _heldout_texts(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT d.transcript FROM s2s_training_data d "
                                       "JOIN s2s_app_heldout h ON h.item_id = d.id")}


def _samples(blob: bytes) -> np.ndarray:
    return audio.decode(blob, AudioConfig())[0]


def _load(folder: Path, cache: Path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import datasets

    return datasets.load_dataset("audiofolder", data_dir=str(folder), cache_dir=str(cache))


@pytest.mark.slow  # loads the export with Hugging Face datasets
def test_export_loads_in_datasets_and_imports_back_whole(cfg, conn, filled, clips, tmp_path, monkeypatch, capsys):
    out = tmp_path / "dataset"
    assert _cli(cfg, "export", str(out)) == 0
    assert f"item {filled['bad']}:" in capsys.readouterr().out  # skipped, with the reason
    heldout = _heldout_texts(conn)
    assert len(heldout) == 3  # the held-out minimum, fixed by the export

    loaded = _load(out, tmp_path / "hf-cache", monkeypatch)
    assert set(loaded) == {"train", "test"}
    assert {r["transcription"] for r in loaded["test"]} == heldout | {SENTENCES[4]}
    assert {r["role"] for r in loaded["test"] if r["transcription"] == SENTENCES[4]} == {"regression"}
    assert len(loaded["train"]) + len(loaded["test"]) == len(SENTENCES)
    for row in list(loaded["train"]) + list(loaded["test"]):
        number = SENTENCES.index(row["transcription"])
        assert row["id"] == filled["ids"][number]
        assert row["is_trained"] == int(number in (1, 2))
        assert row["audio"]["sampling_rate"] == 16000
        assert np.allclose(row["audio"]["array"], _samples(clips[number]), atol=1e-4)

    target = tmp_path / "imported.db"
    assert _cli(cfg, "--db", str(target), "--create", "import", str(out), "--reviewed") == 0
    other = database.connect(target)
    rows = other.execute("SELECT id, transcript, audio_blob, is_reviewed, is_trained FROM s2s_training_data").fetchall()
    assert sorted(r["transcript"] for r in rows) == sorted(SENTENCES)
    for row in rows:
        assert np.array_equal(_samples(row["audio_blob"]), _samples(clips[SENTENCES.index(row["transcript"])]))
        assert (row["is_reviewed"], row["is_trained"]) == (1, 0)  # this database's model has learned nothing yet
    assert _heldout_texts(other) == heldout
    # The split came across whole: the next run here holds out exactly those items, and checks the same one.
    held_now = training_sets.heldout_ids(other, cfg.training.heldout_fraction, cfg.training.heldout_min)
    assert {r["transcript"] for r in rows if r["id"] in held_now} == heldout
    assert [r["transcript"] for r in rows if r["id"] in training_sets.regression_ids(other)] == [SENTENCES[4]]

    assert _cli(cfg, "--db", str(target), "import", str(out)) == 0  # again: everything is a duplicate
    assert "added 0 items" in capsys.readouterr().out
    assert other.execute("SELECT count(*) FROM s2s_training_data").fetchone()[0] == len(SENTENCES)
    other.close()


def test_export_options_and_a_folder_in_use(cfg, conn, filled, tmp_path):
    out = tmp_path / "untrained"
    assert _cli(cfg, "export", str(out), "--untrained", "--wav16k") == 0
    names = sorted(p.name for p in out.rglob("*.wav"))
    assert len(names) == len(SENTENCES) - 2  # the two trained items are left out
    for path in out.rglob("*.wav"):
        info = sf.info(str(path))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert _cli(cfg, "export", str(out)) == 1  # never writes into a folder that holds something
    assert not out.with_name("untrained.partial").exists()


def test_dashboard_download_is_the_same_dataset(client, filled):
    response = client.get("/api/export?untrained=1")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        names = archive.namelist()
        table = archive.read("s2s-dataset/train/metadata.csv").decode()
    assert "s2s-dataset/README.md" in names and "s2s-dataset/test/metadata.csv" in names
    assert table.splitlines()[0] == "file_name,transcription,id,is_trained,role,no_speech"
    assert sum(n.endswith(".wav") for n in names) == len(SENTENCES) - 2
    assert client.get("/api/export?wav16k=maybe").status_code == 400


def test_download_link_on_the_dashboard(page, filled):
    page.goto("/")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download reviewed clips").click()
    assert download.value.suggested_filename == "s2s-dataset.zip"
    with zipfile.ZipFile(download.value.path()) as archive:
        assert "s2s-dataset/train/metadata.csv" in archive.namelist()
    # The command line's options are on the page too: untrained only, 16 kHz WAV.
    page.get_by_label("untrained only").check()
    page.get_by_label("as 16 kHz WAV").check()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download reviewed clips").click()
    with zipfile.ZipFile(download.value.path()) as archive:
        names = archive.namelist()
        rows = [row for name in names if name.endswith("metadata.csv")
                for row in csv.DictReader(io.StringIO(archive.read(name).decode()))]
    assert all(n.endswith((".wav", ".csv", ".md", "/")) for n in names)  # every clip as WAV
    assert rows and {row["is_trained"] for row in rows} == {"0"}  # the two trained items left out


def test_a_folder_of_clips_with_problems(cfg, conn, clips, tmp_path, capsys):
    folder = tmp_path / "recordings"
    (folder / "kitchen").mkdir(parents=True)
    for n in (0, 1, 2):
        (folder / f"clip{n}.wav").write_bytes(clips[n])
        (folder / f"clip{n}.txt").write_text(SENTENCES[n] + "\n", encoding="utf-8")
    (folder / "kitchen" / "copy.flac").write_bytes(_as_flac(clips[1]))  # same sound, other bytes: imported
    (folder / "kitchen" / "copy.flac.txt").write_text("not its pair", encoding="utf-8")  # pairs by stem only
    (folder / "kitchen" / "again.wav").write_bytes(clips[0])  # same bytes as clip0: a duplicate
    (folder / "kitchen" / "again.txt").write_text(SENTENCES[0], encoding="utf-8")
    (folder / "broken.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage")
    (folder / "broken.txt").write_text("never imported", encoding="utf-8")
    (folder / "orphan.txt").write_text("a transcript with no audio", encoding="utf-8")
    (folder / "untranscribed.wav").write_bytes(clips[5])
    existing = database.insert_item(conn, "already here", clips[2])  # the assistant had recorded this one

    assert _cli(cfg, "import", str(folder)) == 0
    out = capsys.readouterr().out
    assert "added 4 items (0 reviewed), 2 without a transcript, left unreviewed, skipped 2 duplicates" in out
    for name, why in (("broken.wav", "cannot be decoded"), ("orphan.txt", "without an audio file"),
                      ("copy.flac.txt", "without an audio file")):
        assert any(name in line and why in line for line in out.splitlines()), (name, out)
    texts = sorted(r[0] or "" for r in conn.execute("SELECT transcript FROM s2s_training_data WHERE id != ?",
                                                    (existing,)))
    assert texts == sorted(["", "", SENTENCES[0], SENTENCES[1]])  # the FLAC copy and the clip without text
    assert conn.execute("SELECT count(*) FROM s2s_training_data").fetchone()[0] == 5
    assert conn.execute("SELECT count(*) FROM s2s_training_data WHERE is_reviewed = 1").fetchone()[0] == 0


def _as_flac(wav: bytes) -> bytes:
    samples, rate = sf.read(io.BytesIO(wav), dtype="int16")
    out = io.BytesIO()
    sf.write(out, samples, rate, format="FLAC")
    return out.getvalue()


def test_another_database_keeps_its_review_flags(cfg, conn, clips, tmp_path, capsys):
    source = tmp_path / "assistant.db"
    other = database.connect(source)
    other.execute(database.SEED_SCHEMA)
    database.insert_item(other, SENTENCES[0], clips[0], is_reviewed=1, is_trained=1)
    database.insert_item(other, SENTENCES[1], clips[1])
    other.execute("INSERT INTO s2s_training_data(transcript, audio_blob, is_reviewed) VALUES (?, ?, 'yes')",
                  (SENTENCES[2], clips[2]))  # a flag of the wrong type reads as not reviewed
    other.execute("INSERT INTO s2s_training_data(transcript, audio_blob) VALUES ('empty', x'')")
    other.close()

    assert _cli(cfg, "import", str(source)) == 0
    assert "assistant.db#4: the audio is empty" in capsys.readouterr().out
    flags = dict(conn.execute("SELECT transcript, is_reviewed FROM s2s_training_data").fetchall())
    assert flags == {SENTENCES[0]: 1, SENTENCES[1]: 0, SENTENCES[2]: 0}
    assert conn.execute("SELECT count(*) FROM s2s_training_data WHERE is_trained = 1").fetchone()[0] == 0


def test_import_of_nothing_usable_says_why(cfg, conn, tmp_path, capsys):
    assert _cli(cfg, "import", str(tmp_path / "missing")) == 1
    assert "there is nothing at" in capsys.readouterr().err
    not_db = tmp_path / "notes.txt"
    not_db.write_text("hello", encoding="utf-8")
    assert _cli(cfg, "import", str(not_db)) == 1
    assert "not a folder of clips nor a database" in capsys.readouterr().err


def test_export_to_the_current_folder(cfg, conn, filled, tmp_path, monkeypatch):
    """Issue: `main.py export .` crashed (PosixPath('.') has an empty name)."""
    empty = tmp_path / "here"
    empty.mkdir()
    monkeypatch.chdir(empty)
    assert _cli(cfg, "export", ".") == 0
    assert (empty / "train" / "metadata.csv").is_file()


def test_transcripts_a_spreadsheet_would_run_are_written_as_text_and_read_back_unchanged(cfg, conn, clips, tmp_path):
    risky = ["=HYPERLINK(\"http://x\",\"y\")", "+1 to that", "-5 degrees tonight", "@home turn it on",
             "'=already quoted", "'twas the night"]
    for n, text in enumerate(risky):
        database.insert_item(conn, text, clips[n], is_reviewed=1)
    out = tmp_path / "dataset"
    assert _cli(cfg, "export", str(out)) == 0
    cells = [row["transcription"] for split in ("train", "test") if (out / split / "metadata.csv").is_file()
             for row in csv.DictReader((out / split / "metadata.csv").open(encoding="utf-8", newline=""))]
    assert len(cells) == len(risky)
    # What a spreadsheet shows as text: nothing starts with a character that opens a formula.
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert "'twas the night" in cells
    target = tmp_path / "imported.db"
    assert _cli(cfg, "--db", str(target), "--create", "import", str(out)) == 0
    other = database.connect(target)
    assert sorted(r[0] for r in other.execute("SELECT transcript FROM s2s_training_data")) == sorted(risky)
    other.close()
