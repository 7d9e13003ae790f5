"""Encoder states kept on disk between runs and epochs: one .npy file per clip, keyed by its audio.

The frozen bottom's output (StateCache) lives in a folder named for the frozen weights' fingerprint
(stt.finetune.encoder_states); the trained top's frozen tail (FrozenTail, the approximation
stt.finetune.frozen_tail computes with) in a run's scratch folder or the warm-up's. Both are kept in
float16 and read back as float32 (`read_state`). Files are written
whole beside their final name and renamed, checked before they are read, and a free-space margin is kept
for the assistant (utils/disk.py).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import uuid
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from stt.finetune.data import MAX_SECONDS, SAMPLE_RATE
from stt.finetune.encoder_states import EncoderSplit
from utils import disk


def keep_only(root: Path, name: str) -> None:
    """Delete everything in `root` but `name`: states of other weights can never be read again."""
    if root.is_dir():
        for stale in root.iterdir():
            if stale.name != name:
                shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)


def npy_path(folder: Path, key: str, earlier: Path | None = None) -> Path:
    """A key's file in `folder`, or in `earlier` where only that folder holds it."""
    own = folder / f"{key}.npy"
    if earlier is None or own.is_file():
        return own
    kept = earlier / f"{key}.npy"
    return kept if kept.is_file() else own


def sound(path: Path) -> bool:
    """Whether a cached file is whole and plain numbers: its header reads, its dtype holds no Python
    objects (never unpickled) and its size is what the header says. One that is not is renamed to
    `<name>.bad` and reported, so a run computes it again instead of failing on it ever after."""
    if not path.is_file():
        return False
    try:
        with path.open("rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _fortran, dtype = read(f)
            whole = f.tell() + int(np.prod(shape)) * dtype.itemsize == path.stat().st_size
        if whole and not dtype.hasobject:
            return True
    except (OSError, ValueError):
        pass
    bad = path.with_name(f"{path.name}.bad")
    try:
        os.replace(path, bad)
    except OSError:
        bad = path
    warnings.warn(f"The cached file {path} cannot be read; it was moved to {bad.name} and is computed again "
                  "(the cache can be deleted at any time: runs rebuild what they need).", stacklevel=2)
    return False


def missing_keys(keys: Sequence[str], path_of: Callable[[str], Path]) -> list[str]:
    """The keys (once each) whose cached file is absent or unreadable (`sound`). The others are marked as
    used now (reading them does not: mmap, noatime), so the cache's size limit keeps them
    (stt/models/disk_use.trim_state_cache)."""
    missing = []
    for key in dict.fromkeys(keys):
        path = path_of(key)
        if not sound(path):
            missing.append(key)
            continue
        try:
            os.utime(path)
        except OSError:
            pass  # a read-only cache is only trimmed less well
    return missing


def save_whole(final: Path, array: np.ndarray, keep_free_mb: int = disk.AUTO) -> None:
    """Written beside its final name and renamed, so a crash or a stopped warm-up never leaves a
    half-written file that a later run would read."""
    disk.ensure_room(final.parent, array.nbytes + 4096, "the encoder states of a clip",
                     f"The cache in {final.parent.parent} can be deleted at any time: runs rebuild what they need.",
                     keep_free_mb)
    partial = final.with_name(f"{final.stem}.{uuid.uuid4().hex[:8]}.partial.npy")
    try:
        np.save(partial, array)
        os.replace(partial, final)
    except OSError:
        partial.unlink(missing_ok=True)  # never half a file left behind on a full disk
        raise


def state_bytes(split: EncoderSplit) -> int:
    """One clip's encoder state as `as_stored` keeps it (float16), without the file's header."""
    config = split.encoder.config
    return config.max_source_positions * config.d_model * 2


def as_stored(state: torch.Tensor) -> np.ndarray:
    """A state as the caches keep it: float16, half the disk of float32 (distil-small.en: 2.3 MB a clip
    instead of 4.6). Measured on tiny.en (docs/performance.md, "Encoder states in float16"): decoding 80
    clips from states rounded this way wrote the very same transcripts as from float32 states, both the
    assistant's way and greedy. Clamped to float16's range, as Whisper's own fp16 layers are."""
    limit = torch.finfo(torch.float16).max
    return state.detach().clamp(-limit, limit).to(torch.float16).cpu().numpy()


def read_state(path: Path, mmap: bool = False) -> np.ndarray:
    """A cached file as float32, whatever it was written in (caches from before float16 hold float32)."""
    return np.asarray(np.load(path, mmap_mode="r" if mmap else None), dtype=np.float32)


def audio_key(audio: np.ndarray) -> str:
    """A clip's identity for the cache: the samples Whisper sees (its first 30 s at 16 kHz)."""
    window = np.ascontiguousarray(np.asarray(audio, dtype=np.float32)[:MAX_SECONDS * SAMPLE_RATE])
    return hashlib.blake2b(window.tobytes(), digest_size=16).hexdigest()


class _NpyFolder:
    """A folder of one .npy file per key, read from `earlier` (the same arrays computed before, by the
    warm-up: stt/runs/warm.py) where this folder lacks one."""

    def __init__(self, folder: Path, earlier: Path | None = None, keep_free_mb: int = disk.AUTO) -> None:
        self.folder = Path(folder)
        self.earlier = earlier
        self.keep_free_mb = keep_free_mb  # the free space left on the disk for the assistant (utils/disk.py)
        self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return npy_path(self.folder, key, self.earlier)

    def missing(self, keys: Sequence[str]) -> list[str]:
        return missing_keys(keys, self._path)


class StateCache(_NpyFolder):
    """The frozen bottom's output, one file per clip under `root/<fingerprint>/`; other fingerprints'
    folders are deleted."""

    def __init__(self, root: Path, fingerprint: str, earlier: Path | None = None,
                 keep_free_mb: int = disk.AUTO) -> None:
        self.root = Path(root)
        keep_only(self.root, fingerprint)
        super().__init__(self.root / fingerprint, earlier, keep_free_mb)

    def put(self, key: str, state: torch.Tensor) -> None:
        save_whole(self.folder / f"{key}.npy", as_stored(state), self.keep_free_mb)

    def get(self, keys: Sequence[str]) -> torch.Tensor:
        """The states of `keys` stacked as a batch (batch, positions, d_model), in float32."""
        return torch.from_numpy(np.stack([read_state(self._path(k), mmap=True) for k in keys]))


class FrozenTail(_NpyFolder):
    """The starting weights' hidden states inside the trained top, for each clip of a run, on disk.

    For a split with k trained layers, a clip's file holds k arrays: the input of
    each trained layer but the first (whose input is the cached bottom state
    itself) and the last layer's output, in the run's scratch folder (float16, as
    `as_stored` keeps every state: distil-small.en's 1,500 x 768 states per layer
    would otherwise take 4.6 MB each). The built-in clips' tails
    for the deployed weights may already lie in `earlier` (stt/runs/warm.py).
    """

    def __init__(self, split: EncoderSplit, folder: Path, earlier: Path | None = None,
                 keep_free_mb: int = disk.AUTO) -> None:
        super().__init__(folder, earlier, keep_free_mb)
        self.split = split

    @staticmethod
    def fits(split: EncoderSplit, clips: int, folder: Path) -> bool:
        """Whether `clips` clips' tails take under half the free space of `folder`'s disk. A run that would
        fill it (thousands of clips of distil-small.en: 6.9 MB each) trains on the full window instead."""
        needed = clips * split.trained_layers * state_bytes(split)
        return needed < shutil.disk_usage(folder).free / 2

    def put(self, keys: Sequence[str], states: torch.Tensor) -> None:
        """Run the top layers without gradients over a batch of bottom states and keep what each layer saw."""
        with torch.no_grad():
            kept = self.split.top_hidden(states)
        for key, array in zip(keys, as_stored(torch.stack(kept, dim=1))):
            save_whole(self.folder / f"{key}.npy", array, self.keep_free_mb)

    def get(self, key: str, bottom: torch.Tensor) -> torch.Tensor:
        """(k + 1, positions, d_model): the bottom state and what each trained layer saw after it."""
        tail = torch.from_numpy(read_state(self._path(key))).to(bottom.dtype)
        return torch.cat([bottom.unsqueeze(0), tail])
