"""Model versions beside the deployed folder, and the atomic swap that deploys one.

Layout, for a configured model path `.models/stt/distil-small.en`:

    .models/stt/distil-small.en/               the deployed model (what the assistant loads)
    .models/stt/distil-small.en.versions/      every kept version, each a complete model folder
        v0-original/                           the model as it was before the first training run
        v1-20261124-153000/  s2s_version.json  a trained model and its metrics
    .models/stt/distil-small.en.cache/         frozen encoder states per clip (stt.finetune.state_files), reusable
    .models/stt/distil-small.en.heard/         what the deployed model writes, the assistant's way (stt.assistant)

Deploying copies a version to `<path>.incoming`, then swaps by two renames
(deployed -> `<path>.previous`, incoming -> deployed). A crash between the two
renames leaves `.previous` and no deployed folder; `repair()` (run by the app
and by every worker at start) puts `.previous` back, so the assistant always
finds a complete, loadable model.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from utils import disk
from utils.database import now

META = "s2s_version.json"
ORIGINAL = "v0-original"


class StoreError(RuntimeError):
    """A version is missing or the swap could not be done; the message says which."""


def versions_dir(model_path: Path) -> Path:
    """Beside the deployed folder, on the same disk, so a version can be swapped in by rename."""
    return model_path.with_name(model_path.name + ".versions")


def state_cache_dir(model_path: Path) -> Path:
    """Where training keeps the frozen encoder part's output per clip (stt.finetune.state_files), reused
    across runs; safe to delete at any time."""
    return model_path.with_name(model_path.name + ".cache")


def heard_dir(model_path: Path) -> Path:
    """Where runs keep what the deployed model wrote for each measured clip (stt/assistant/heard.py), so
    measuring before training decodes only clips it has not heard; safe to delete at any time."""
    return model_path.with_name(model_path.name + ".heard")


def write_problem(model_path: Path) -> OSError | None:
    """Why nothing can be written beside the model folder, or None: every run works, keeps versions
    and swaps there, so a run that cannot is refused before it starts rather than failing at its end
    (or leaving scratch folders it cannot remove). A probe, not os.access: that ignores read-only
    mounts, the immutable attribute and Windows ACLs."""
    for folder in (model_path.parent, versions_dir(model_path)):
        if not folder.is_dir():
            continue  # the versions folder is made by the first run, in the parent just probed
        try:
            Path(tempfile.mkdtemp(prefix=f"{model_path.name}.probe-", dir=folder)).rmdir()
        except OSError as exc:
            return exc
    return None


def _sibling(model_path: Path, suffix: str) -> Path:
    return model_path.with_name(model_path.name + suffix)


def _rename(src: Path, dst: Path) -> None:
    """Rename with retries: on Windows a folder the assistant has open can refuse for a moment."""
    for attempt in range(10):
        try:
            src.rename(dst)
            return
        except PermissionError:
            if attempt == 9:
                raise StoreError(f"could not rename {src} to {dst}: it is in use (close the program using the model "
                                 "and try again)") from None
            time.sleep(0.5)


def read_meta(folder: Path) -> dict[str, Any]:
    """A version's metrics and origin; {} for a folder the store did not write (the user's own model)."""
    try:
        return json.loads((folder / META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def swap_interrupted(model_path: Path) -> bool:
    """A swap moved the deployed folder aside and did not finish (see repair)."""
    return _sibling(model_path, ".previous").exists()


def repair(model_path: Path) -> None:
    """Finish or undo a swap a crash interrupted, and drop half-copied folders."""
    previous, incoming = _sibling(model_path, ".previous"), _sibling(model_path, ".incoming")
    if not model_path.exists() and previous.exists():
        _rename(previous, model_path)
    shutil.rmtree(previous, ignore_errors=True)
    shutil.rmtree(incoming, ignore_errors=True)
    vdir = versions_dir(model_path)
    if vdir.is_dir():
        for partial in vdir.glob("*.partial"):
            shutil.rmtree(partial, ignore_errors=True)


def _copy_or_nothing(src: Path, dst: Path, keep_free_mb: int) -> None:
    """Copy a folder if it fits with the assistant's margin still free (utils/disk.py); a copy that fails
    anyway leaves no half of it taking the assistant's space."""
    disk.ensure_room(dst.parent, disk.folder_size(src), f"a copy of the model ({src.name})",
                     f"Delete old versions in {dst.parent} or clear the caches beside the model (Clear caches on "
                     "the dashboard), or free space on that disk.", keep_free_mb)
    try:
        shutil.copytree(src, dst)
    except OSError:
        shutil.rmtree(dst, ignore_errors=True)
        raise


def _copy_into(src: Path, dst: Path, keep_free_mb: int) -> None:
    """Copy a folder so it appears at `dst` complete or not at all."""
    partial = dst.with_name(dst.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    _copy_or_nothing(src, partial, keep_free_mb)
    _rename(partial, dst)


def lineage(model_path: Path, version: str | None = None) -> list[str]:
    """The versions whose training a model contains, oldest first, itself last.

    `version` None means the deployed folder. Each version stores the lineage
    of the model it was trained from, so this survives pruning of old versions.
    """
    meta = read_meta(model_path if version is None else versions_dir(model_path) / version)
    if not meta.get("version"):
        return [ORIGINAL]
    return [*meta.get("lineage", []), meta["version"]]


def deployed_version(model_path: Path) -> str | None:
    """The version at the model path; None for the user's own model, which carries no metadata."""
    return read_meta(model_path).get("version") if model_path.is_dir() else None


def _number(name: str) -> int:
    """The n of a version name `v<n>-...` (-1 for anything else)."""
    head = name[1:].split("-")[0]
    return int(head) if name.startswith("v") and head.isdigit() else -1


def _next_name(model_path: Path) -> str:
    numbers = [_number(p.name) for p in versions_dir(model_path).glob("v*-*")]
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"v{max(numbers, default=0) + 1}-{stamp}"


def add_version(model_path: Path, candidate: Path, meta: dict[str, Any], keep_free_mb: int = disk.AUTO) -> str:
    """Keep a trained model as a new version (deployed or not); returns its name. Each copy leaves
    `keep_free_mb` free for the assistant or raises disk.DiskShort before it starts."""
    vdir = versions_dir(model_path)
    vdir.mkdir(parents=True, exist_ok=True)
    if model_path.is_dir() and not (vdir / ORIGINAL).exists() and deployed_version(model_path) is None:
        # The first run keeps the user's own model, so it can always be restored.
        _copy_into(model_path, vdir / ORIGINAL, keep_free_mb)
        (vdir / ORIGINAL / META).write_text(json.dumps({"version": ORIGINAL, "created_at": now(),
                                                        "note": "the model before any training"}), encoding="utf-8")
    name = _next_name(model_path)
    # Trained from whatever is deployed now: runs and rollbacks never overlap.
    record = {**meta, "version": name, "created_at": now(), "lineage": lineage(model_path)}
    (candidate / META).write_text(json.dumps(record), encoding="utf-8")
    _copy_into(candidate, vdir / name, keep_free_mb)
    return name


def deploy(model_path: Path, version: str, keep_free_mb: int = disk.AUTO) -> None:
    """Make a kept version the deployed model by an atomic swap of folders (its copy leaving `keep_free_mb`
    free for the assistant)."""
    source = versions_dir(model_path) / version
    if not (source / META).is_file():
        raise StoreError(f"there is no kept model version {version!r}")
    repair(model_path)
    incoming, previous = _sibling(model_path, ".incoming"), _sibling(model_path, ".previous")
    _copy_or_nothing(source, incoming, keep_free_mb)
    if model_path.exists():
        _rename(model_path, previous)
    try:
        _rename(incoming, model_path)
    except (StoreError, OSError):
        if previous.exists() and not model_path.exists():
            _rename(previous, model_path)  # never leave the assistant without a model
        shutil.rmtree(incoming, ignore_errors=True)
        raise
    shutil.rmtree(previous, ignore_errors=True)


def list_versions(model_path: Path) -> list[dict[str, Any]]:
    """Kept versions, newest first, with their WER and whether each is the deployed one."""
    current = deployed_version(model_path)
    vdir = versions_dir(model_path)
    found = []
    for folder in sorted(vdir.glob("v*"), key=lambda p: _number(p.name), reverse=True):
        if folder.name.endswith(".partial") or not folder.is_dir():
            continue
        meta = read_meta(folder)
        is_deployed = current == folder.name or (current is None and folder.name == ORIGINAL)
        found.append({"version": folder.name, "created_at": meta.get("created_at"), "job_id": meta.get("job_id"),
                      "wer_before": meta.get("wer_before"), "wer_after": meta.get("wer_after"),
                      "accepted": meta.get("accepted", folder.name == ORIGINAL), "deployed": is_deployed})
    return found


def prune(model_path: Path, keep: int) -> None:
    """Keep the original, the deployed one and the `keep` newest others."""
    current = deployed_version(model_path)
    others = [v["version"] for v in list_versions(model_path) if v["version"] not in (ORIGINAL, current)]
    for name in others[keep:]:
        shutil.rmtree(versions_dir(model_path) / name, ignore_errors=True)

