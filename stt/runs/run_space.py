"""What a run writes beside the model: counted before it starts, and checked again before each large write.

bench/small_disk_check.py (docs/performance.md, "On a small disk beside the assistant") found a tiny.en click
(a CTranslate2 folder of 75 MB) filling a 1,000 MB disk to its last byte: the start check counted three
model sizes where a run writes up to eight (a float32 working copy of a float16 CTranslate2 folder, the
trained model, its export, the original kept the first time, the new version, and the copy a deploy swaps
in), beside the encoder caches, which check each file themselves (stt/finetune/state_files.py). Each of
those writes now checks the margin kept for the assistant (utils/disk.py) before it starts, so a run that
cannot finish stops before the disk is full and says what to delete.
"""
from __future__ import annotations

from pathlib import Path

from stt.models import store
from stt.models.conversion import working_copy_bytes
from stt.models.model_format import CTRANSLATE2, detect_format
from utils import disk
from utils.config import Config


def remedy(model_path: Path) -> str:
    """What the user can delete to make room beside the model."""
    return (f"Delete old versions in {store.versions_dir(model_path)} or the rebuildable cache "
            f"{store.state_cache_dir(model_path)} (Clear caches on the dashboard), or free space on that disk.")


def export_bytes(model_path: Path) -> int:
    """What the trained model's export into the deployed model's format takes: a CTranslate2 folder's size
    (written with its quantization); a Hugging Face folder is deployed as trained, with no export."""
    return disk.folder_size(model_path) if detect_format(model_path) == CTRANSLATE2 else 0


def copies(model_path: Path) -> int:
    """Bytes of the model copies a run writes beside the model by the time it deploys."""
    size, working = disk.folder_size(model_path), working_copy_bytes(model_path)
    trained = working or size  # the trained Hugging Face folder: the size of what it trained from
    original = 0 if (store.versions_dir(model_path) / store.ORIGINAL).is_dir() else size
    return working + trained + export_bytes(model_path) + original + 2 * size  # the version, the deploy's copy


def ensure(cfg: Config, needed: int, what: str) -> None:
    """Raise disk.DiskShort unless `needed` bytes fit beside the model with the assistant's margin free."""
    disk.ensure_room(cfg.model.path.parent, needed, what, remedy(cfg.model.path), cfg.database.keep_free_mb)
