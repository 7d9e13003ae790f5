"""What a run's training and its check after each epoch read (the forward pass over it: stt.finetune.forward).

Cached modes ("adapt", "decoder") encode each clip's frozen bottom once and
keep it on disk (stt.finetune.state_files); "adapt" adds the frozen tail of
its trained top (stt.finetune.frozen_tail). Full and lora run the whole
encoder every step, so log-mel features are all they keep. The engine asks
this module for an item per clip.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from stt.finetune.data import Sample, batched_features, log_mel
from stt.finetune.encoder_states import EncoderSplit
from stt.finetune.frozen_tail import clip_states
from stt.finetune.modes import Mode
from stt.finetune.state_files import FrozenTail, StateCache, audio_key
from utils import disk
from utils.config import TrainingConfig


def cache_states(split: EncoderSplit, feature_extractor: Any, clips: Sequence[Sample], cache: StateCache,
                  device: str, batch_size: int, report: Callable[[int, int], None]) -> tuple[list[str], int]:
    """Each clip's cache key, after computing the frozen part's output for the clips not cached yet;
    returns (keys, how many were computed). Only one batch of features is in memory at a time."""
    keys = [audio_key(s.audio) for s in clips]
    first = {key: i for i, key in reversed(list(enumerate(keys)))}
    todo = cache.missing(keys)
    report(0, max(len(todo), 1))
    for start in range(0, len(todo), batch_size):
        chunk = todo[start:start + batch_size]
        features = log_mel(feature_extractor, [clips[first[key]].audio for key in chunk]).to(device)
        for key, state in zip(chunk, split.bottom(features)):
            cache.put(key, state)
        report(start + len(chunk), len(todo))
    return keys, len(todo)


@dataclass
class Inputs:
    """What training and measuring read: for cached modes the encoder split, its state cache, each
    clip's key in it and, when the top of the encoder trains, the frozen tail (stt.finetune.frozen_tail)."""
    split: EncoderSplit | None = None
    cache: StateCache | None = None
    key_of: dict[int, str] = field(default_factory=dict)
    encoded: int = 0
    tail: FrozenTail | None = None
    features: dict[int, torch.Tensor] = field(default_factory=dict)  # full and lora: each learner's log-mel

    def item(self, sample: Sample, feature_extractor: Any, exact: bool = False) -> dict[str, Any]:
        """How the loop reads one clip: a function giving its input tensor when a batch needs it, and
        with a frozen tail the count of leading states trained with gradients (`exact`: none, the trained
        top over the whole window)."""
        if self.cache is None:
            kept = self.features.get(id(sample))
            return {"inputs": (lambda: kept) if kept is not None
                    else (lambda: log_mel(feature_extractor, [sample.audio])[0])}
        key, cache, tail = self.key_of[id(sample)], self.cache, self.tail
        if tail is None or exact:
            return {"inputs": lambda: cache.get([key])[0]}
        return {"inputs": lambda: tail.get(key, cache.get([key])[0]),
                "frames": clip_states(len(sample.audio), self.split.encoder.config.max_source_positions)}


def prepare(model: Any, processor: Any, mode: Mode, device: str, learners: list[Sample],
            watched: dict[str, list[Sample]], cfg: TrainingConfig, cache_dir: Path, scratch: Path,
            report: Callable[[int, int], None], keep_free_mb: int = disk.AUTO) -> Inputs:
    """Cached modes encode the frozen bottom of every clip the run trains on or watches once (reusing
    what the cache holds), and adapt its frozen tail once per run; full and lora run the whole encoder
    every step, so log-mel features are all they can keep."""
    if not mode.cached:
        features = batched_features(processor.feature_extractor, [s.audio for s in learners], cfg.batch_size,
                                    lambda done: report(done, len(learners)))
        return Inputs(features=dict(zip(map(id, learners), features)))
    layers = len(model.get_encoder().layers)
    split = EncoderSplit(model, mode.trained_layers(layers, cfg.adapt_layers))
    cache = StateCache(cache_dir, split.fingerprint(processor.feature_extractor), keep_free_mb=keep_free_mb)
    everything = [*learners, *(s for group in watched.values() for s in group)]
    keys, encoded = cache_states(split, processor.feature_extractor, everything, cache, device, cfg.batch_size,
                                  report)
    tail = None
    if split.trained_layers and FrozenTail.fits(split, len(set(keys)), scratch):
        # The tail is what the top's starting weights make of each clip's bottom states: computed per run,
        # but for the built-in clips the warm-up may have computed it already for these very weights.
        tail = FrozenTail(split, scratch / "tail", warm_tails_dir(cache, split) / "tail", keep_free_mb)
        make_tails(cache, tail, keys, device, cfg.batch_size, report)
    return Inputs(split, cache, dict(zip(map(id, everything), keys)), encoded, tail)


def warm_tails_dir(cache: StateCache, split: EncoderSplit) -> Path:
    """Where the warm-up keeps the built-in clips' tails for the current top weights, inside the bottom's
    cache folder, so a change of either makes them unreachable (and the next warm-up deletes them)."""
    return cache.folder / "tails" / split.top_fingerprint()


def make_tails(cache: StateCache, tail: FrozenTail, keys: Sequence[str], device: str, batch_size: int,
               report: Callable[[int, int], None]) -> int:
    """Each clip's frozen tail not made yet; returns how many were made."""
    todo = tail.missing(keys)
    for start in range(0, len(todo), batch_size):
        chunk = todo[start:start + batch_size]
        tail.put(chunk, cache.get(chunk).to(device))
        report(start + len(chunk), len(todo))
    return len(todo)
