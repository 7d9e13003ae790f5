"""Free space kept for the assistant: the app's large writes leave 10% of the disk (at most 1 GB) free, and
say what was short instead of filling the disk the assistant records to."""
from __future__ import annotations

import shutil
from collections import namedtuple

import numpy as np
import pytest

from stt.finetune.encoder_states import save_whole
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
    _disk(monkeypatch, total=real.total, free=min(GB, real.total // 10) + 2 * size)  # three model sizes needed
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
