"""The encoder cut in two, and the frozen half's output kept on disk between runs.

Whisper's encoder reads a fixed 30 s window through two convolutions and N
transformer layers: on a CPU it is most of the model's compute. The modes
"decoder" and "adapt" freeze its bottom N - k layers (all of them in
"decoder") and train the top k layers and the decoder. The bottom's output for
a clip then never changes, so it is computed once, written to disk, and read
back in every epoch, for both evaluations, and in later runs while that frozen
part stays the same. Memory no longer grows with the number of clips: a batch
is read from memory-mapped files when it is needed.

Files are keyed by the clip's audio and live in a folder named for a
fingerprint of the frozen weights and the feature settings; a change to either
(a full fine-tune, a rollback to another lineage, another split point) makes a
new folder and the stale ones are removed.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from stt.finetune.data import MAX_SECONDS, SAMPLE_RATE
from utils import disk


def default_trained_layers(num_layers: int) -> int:
    """Half of a small encoder, a quarter of a larger one (tiny.en: 2 of 4; base.en: 3 of 6;
    distil-small.en: 3 of 12).

    Measured on tiny.en with built-in rehearsal (docs/performance.md, "Training"): training
    the top half instead of the top layer took held-out WER from 12.3% to 5.8% and ordinary
    speech from 28.4% to 21.6%, close to a full fine-tune's 18.5%. A layer's cost grows
    with the square of the width, so on a CPU a larger encoder keeps to its top quarter
    (distil-small.en's three layers of 768 already cost about as much as four of tiny.en's
    whole encoders); `adapt_layers` sets any other number.
    """
    return max(1, num_layers // 2) if num_layers <= 6 else round(num_layers / 4)


class EncoderSplit:
    """The encoder as a frozen bottom (cached) and a trainable top of `trained_layers` layers.

    With 0 trained layers the whole encoder, final layer norm included, is the
    bottom, and `top` is the identity: that is the "decoder" mode.
    """

    def __init__(self, model: Any, trained_layers: int) -> None:
        self.encoder = model.get_encoder()
        self.num_layers = len(self.encoder.layers)
        self.trained_layers = max(0, min(trained_layers, self.num_layers))
        self.cut = self.num_layers - self.trained_layers

    def freeze(self) -> None:
        """Only the top layers and the final layer norm train; the bottom's cached output stays valid."""
        self.encoder.requires_grad_(False)
        if self.trained_layers:
            for layer in self.encoder.layers[self.cut:]:
                layer.requires_grad_(True)
            self.encoder.layer_norm.requires_grad_(True)

    def bottom(self, features: torch.Tensor) -> torch.Tensor:
        """Output of the frozen part for a batch of log-mel features, without gradients.

        Runs the encoder's own forward (convolutions, positions) over the bottom
        layers only, so the cached states are exactly what the full model computes.
        """
        encoder = self.encoder
        layers, norm = encoder.layers, encoder.layer_norm
        if self.trained_layers:
            encoder.layers, encoder.layer_norm = nn.ModuleList(layers[:self.cut]), nn.Identity()
        try:
            with torch.no_grad():  # not inference_mode: these tensors later feed layers that need grad
                return encoder(features).last_hidden_state
        finally:
            encoder.layers, encoder.layer_norm = layers, norm

    def top(self, states: torch.Tensor) -> torch.Tensor:
        """The encoder's output from the bottom's states: the trained layers and the final layer norm."""
        if not self.trained_layers:
            return states
        hidden = states
        for layer in self.encoder.layers[self.cut:]:
            hidden = layer(hidden, None)
        return self.encoder.layer_norm(hidden)

    def fingerprint(self, feature_extractor: Any) -> str:
        """A digest of everything the cached states depend on: the frozen weights, the split point
        and the feature extractor's settings."""
        settings = {k: v for k, v in feature_extractor.to_dict().items() if isinstance(v, (int, float, str))}
        header = json.dumps({"cut": self.cut, "layers": self.num_layers, **settings}, sort_keys=True).encode()
        return self._digest(header, top=False)

    def top_fingerprint(self) -> str:
        """A digest of the trained top's weights (layers and final norm): with the bottom's states, all
        that the top's output depends on, so what the top computed once stays valid while this holds."""
        return self._digest(b"", top=True)

    def _in_top(self, name: str) -> bool:
        """Whether an encoder weight trains: a layer from the cut up, and the final norm when any layer trains."""
        if name.startswith("layer_norm."):
            return bool(self.trained_layers)
        return name.startswith("layers.") and int(name.split(".")[1]) >= self.cut

    def _digest(self, header: bytes, top: bool) -> str:
        """A digest of `header` and of the encoder weights in the top (or, with top False, outside it)."""
        digest = hashlib.blake2b(digest_size=12)
        digest.update(header)
        for name, tensor in self.encoder.state_dict().items():
            if self._in_top(name) == top:
                digest.update(name.encode())
                digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()


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


def save_whole(final: Path, array: np.ndarray) -> None:
    """Written beside its final name and renamed, so a crash or a stopped warm-up never leaves a
    half-written file that a later run would read."""
    disk.ensure_room(final.parent, array.nbytes + 4096, "the encoder states of a clip",
                     f"The cache in {final.parent.parent} can be deleted at any time: runs rebuild what they need.")
    partial = final.with_name(f"{final.stem}.{uuid.uuid4().hex[:8]}.partial.npy")
    try:
        np.save(partial, array)
        os.replace(partial, final)
    except OSError:
        partial.unlink(missing_ok=True)  # never half a file left behind on a full disk
        raise


def audio_key(audio: np.ndarray) -> str:
    """A clip's identity for the cache: the samples Whisper sees (its first 30 s at 16 kHz)."""
    window = np.ascontiguousarray(np.asarray(audio, dtype=np.float32)[:MAX_SECONDS * SAMPLE_RATE])
    return hashlib.blake2b(window.tobytes(), digest_size=16).hexdigest()


class StateCache:
    """One .npy file per clip under `root/<fingerprint>/`; other fingerprints' folders are deleted.

    Float32, as computed, so training and evaluation from the cache match the
    full model exactly. Files are written beside their final name and renamed,
    so a crash never leaves a half-written state that a later run would read.
    """

    def __init__(self, root: Path, fingerprint: str, earlier: Path | None = None) -> None:
        self.root = Path(root)
        self.folder = self.root / fingerprint
        # The same states computed before, elsewhere (the warm-up's: stt/runs/warm.py), read where this lacks one.
        self.earlier = earlier
        keep_only(self.root, fingerprint)
        self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return npy_path(self.folder, key, self.earlier)

    def missing(self, keys: Sequence[str]) -> list[str]:
        return missing_keys(keys, self._path)

    def put(self, key: str, state: torch.Tensor) -> None:
        save_whole(self.folder / f"{key}.npy", state.detach().cpu().numpy().astype(np.float32, copy=False))

    def get(self, keys: Sequence[str]) -> torch.Tensor:
        """The states of `keys` stacked as a batch (batch, positions, d_model)."""
        return torch.from_numpy(np.stack([np.load(self._path(k), mmap_mode="r") for k in keys]))
