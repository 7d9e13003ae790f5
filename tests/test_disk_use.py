"""The disk beside the model: sizes shown, caches kept within their limit (least recently used first) and
cleared on request (issue 31, item 5)."""
from __future__ import annotations

import os
import time

import numpy as np
from playwright.sync_api import expect

from stt.finetune.state_files import missing_keys
from stt.models import disk_use, store
from stt.runs import jobs
from tests import tiny_whisper
from tests.conftest import run_in_process

MB = disk_use.MB


def _cached(cfg, count: int, mb: int = 1) -> list:
    """`count` cached clips of `mb` MB each, the first the least recently used."""
    folder = store.state_cache_dir(cfg.model.path) / "fingerprint"
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for n in range(count):
        path = folder / f"clip{n}.npy"
        np.save(path, np.zeros((mb * MB - 4096) // 4, np.float32))  # with its header, just under mb MB
        os.utime(path, (time.time() - 1000 + n, time.time() - 1000 + n))
        files.append(path)
    return files


def test_a_run_leaves_the_state_cache_within_its_limit_keeping_what_was_used_last(cfg, conn, trainable, fake_engine):
    files = _cached(cfg, 5)
    # A run used the oldest clip again: it is now the most recently used.
    assert missing_keys(["clip0", "absent"], lambda k: files[0].parent / f"{k}.npy") == ["absent"]
    cfg.training.cache_limit_mb = 2
    run = run_in_process(cfg)
    assert run["state"] == "done", run["message"]
    assert sorted(f.name for f in files if f.exists()) == ["clip0.npy", "clip4.npy"]


def test_no_limit_keeps_everything(cfg):
    files = _cached(cfg, 3)
    assert disk_use.trim_state_cache(cfg.model.path, 0) == 0
    assert all(f.exists() for f in files)


def test_sizes_and_clearing_the_caches_through_the_api(client, conn, cfg, trainable, fake_engine):
    _cached(cfg, 3)
    heard = store.heard_dir(cfg.model.path)
    heard.mkdir()
    (heard / "x.json").write_text("{}")
    sizes = client.get("/api/model/disk").get_json()
    assert sizes["caches_bytes"] >= 2.9 * MB and sizes["model_bytes"] > 0 and sizes["free_bytes"] > 0
    assert sizes["versions_bytes"] == 0
    job_id = jobs.start_record(cfg)["job_id"]  # a run is going: its caches stay
    refused = client.delete("/api/model/caches")
    assert refused.status_code == 409 and refused.get_json()["error"] == "job_running"
    conn.execute("UPDATE s2s_app_train_runs SET state = 'cancelled' WHERE job_id = ?", (job_id,))
    cleared = client.delete("/api/model/caches").get_json()
    assert cleared["freed_bytes"] >= 2.9 * MB and "next Train click" in cleared["message"]
    assert not store.state_cache_dir(cfg.model.path).exists() and not heard.exists()
    assert client.get("/api/model/disk").get_json()["caches_bytes"] == 0


def test_the_dashboard_shows_the_sizes_and_clears_the_caches(page, cfg):
    tiny_whisper.build(cfg.model.path)
    _cached(cfg, 2)
    page.goto("/")
    expect(page.locator("#disk-use")).to_contain_text("caches 2 MB")
    page.locator("#clear-caches").click()
    expect(page.locator("#toast")).to_contain_text("Freed 2 MB")
    expect(page.locator("#disk-use")).to_contain_text("caches 0 MB")
    expect(page.locator("#clear-caches")).to_be_disabled()
