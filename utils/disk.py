"""Free space kept for the assistant: what the app writes beside the model checks it first.

The assistant writes its recordings into the same database on the same computer, often the same
disk as the model and its caches. A warm-up or a run that filled that disk would make the
assistant lose rows ("database or disk is full"), so every large write of the app leaves a margin
free: by default 10% of the disk, at most 1 GB (`[database].keep_free_mb` sets another). A write
that would eat into it is refused with one sentence that says what was short and what can be deleted.
"""
from __future__ import annotations

import shutil
from pathlib import Path

MB = 1 << 20
MARGIN_MAX = 1 << 30
MARGIN_SHARE = 0.10
# `keep_free_mb` that means the default margin.
AUTO = -1


class DiskShort(OSError):
    """Not enough free space beyond the margin kept for the assistant; str() is the sentence to show."""


def margin(total: int, keep_free_mb: int = AUTO) -> int:
    """Bytes to leave free on a disk of `total` bytes."""
    return min(MARGIN_MAX, int(total * MARGIN_SHARE)) if keep_free_mb == AUTO else max(0, keep_free_mb) * MB


def room(folder: Path, keep_free_mb: int = AUTO) -> tuple[int, int]:
    """(bytes free, bytes to keep free) on the disk of `folder`, which must exist."""
    usage = shutil.disk_usage(folder)
    return usage.free, margin(usage.total, keep_free_mb)


def ensure_room(folder: Path, needed: int, what: str, remedy: str = "", keep_free_mb: int = AUTO) -> None:
    """Raise DiskShort unless `needed` bytes fit on `folder`'s disk with the margin still free.
    `what` names the write ("the encoder states of one clip"); `remedy` says what the user can delete."""
    folder = existing(Path(folder))
    free, keep = room(folder, keep_free_mb)
    if free - needed < keep:
        raise DiskShort(f"Not enough free disk space at {folder} for {what}: {needed / MB:,.0f} MB needed, "
                        f"{free / MB:,.0f} MB free, and {keep / MB:,.0f} MB are kept free so the assistant "
                        f"can keep recording. {remedy or 'Free some space on that disk.'}")


def folder_size(path: Path) -> int:
    """Bytes on disk of every file under `path` (0 for none): what a copy of that folder will take. A file
    removed while it is counted (a run's rename, a warm-up's partial file) counts nothing."""
    total = 0
    for file in Path(path).rglob("*"):
        try:
            total += file.stat().st_size if file.is_file() else 0
        except OSError:
            continue
    return total


def existing(path: Path) -> Path:
    """The nearest folder that exists: a cache folder may not be made yet."""
    while not path.exists() and path.parent != path:
        path = path.parent
    return path
