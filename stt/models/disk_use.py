"""What the model takes on disk beside it, and the caches kept within a limit or cleared on request.

The encoder-state cache grows with every clip a run encodes (float16, 1,500 × width a clip: 2.3 MB on
distil-small.en, so 23 GB for 10,000 clips) and what the deployed model heard with it; both can be
rebuilt at any time. So after each run the state cache is cut to `[training].cache_limit_mb`, the
clips least recently used going first (a run marks every cached clip it uses), and the dashboard
shows the sizes with a button that clears both (GET /api/model/disk, DELETE /api/model/caches).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from stt.models import store
from utils import disk

MB = 1 << 20


def usage(model_path: Path) -> dict[str, Any]:
    """Bytes of the deployed model, its kept versions and its rebuildable caches, and what is free on its disk."""
    folder = model_path if model_path.is_dir() else model_path.parent
    size = disk.folder_size
    return {"model_bytes": size(model_path), "versions_bytes": size(store.versions_dir(model_path)),
            "caches_bytes": size(store.state_cache_dir(model_path)) + size(store.heard_dir(model_path)),
            "free_bytes": shutil.disk_usage(folder if folder.exists() else model_path.parent).free}


def shortage(model_path: Path, database_path: Path, keep_free_mb: int = disk.AUTO) -> str | None:
    """One sentence when the disk of the database (or of the model) has less free than the margin kept for
    the assistant: how much is free, what of the app's lies there and what can be deleted; None otherwise.
    Sizes are only counted when short, so a health check stays cheap."""
    for path, holds in ((database_path, "the assistant's database"), (model_path, "the model")):
        folder = disk.existing(path if path.is_dir() else path.parent)
        free, keep = disk.room(folder, keep_free_mb)
        if free >= keep:
            continue
        found = usage(model_path)
        same_disk = disk.existing(model_path.parent).stat().st_dev == folder.stat().st_dev
        ours = (f" Of this app's files there, the rebuildable caches beside the model take "
                f"{found['caches_bytes'] / MB:,.0f} MB (Clear caches on the dashboard) and its kept versions "
                f"{found['versions_bytes'] / MB:,.0f} MB (in {store.versions_dir(model_path)}).") if same_disk else ""
        return (f"The disk holding {holds} ({folder}) has {free / MB:,.0f} MB free, under the {keep / MB:,.0f} MB "
                f"kept free so the assistant can keep recording: the app writes nothing more there until space is "
                f"freed.{ours}")
    return None


def clear_caches(model_path: Path) -> int:
    """Delete the rebuildable caches beside the model (the next run or warm-up makes what it needs again);
    returns the bytes freed."""
    freed = 0
    for cache in (store.state_cache_dir(model_path), store.heard_dir(model_path)):
        freed += disk.folder_size(cache)
        shutil.rmtree(cache, ignore_errors=True)
    return freed


def trim_state_cache(model_path: Path, limit_mb: int) -> int:
    """Delete the least recently used cached clips until the state cache holds at most `limit_mb` (0: no
    limit); returns how many files went."""
    root = store.state_cache_dir(model_path)
    if limit_mb <= 0 or not root.is_dir():
        return 0
    files = []
    for file in root.rglob("*.npy"):
        try:
            stat = file.stat()
        except OSError:
            continue
        files.append((stat.st_mtime, stat.st_size, file))
    total, removed = sum(size for _, size, _ in files), 0
    for _, size, file in sorted(files, key=lambda f: f[0]):
        if total <= limit_mb * MB:
            break
        try:
            file.unlink()
        except OSError:
            continue  # held open on Windows: a later run trims it
        total, removed = total - size, removed + 1
    return removed
