"""Training data for the Whisper engine: samples, log-mel features and the padding collator.

Kept apart from the training loop so the pieces the tests pin down (how a batch
is padded, what the loss skips) can be read on their own; the targets
themselves are stt.finetune.labels.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from utils.audio import WHISPER_RATE

SAMPLE_RATE = WHISPER_RATE
# Whisper sees at most 30 s; the feature extractor pads or cuts every clip to exactly that.
MAX_SECONDS = 30
# Label value the loss skips (PyTorch's cross-entropy default).
IGNORE_INDEX = -100


@dataclass
class Sample:
    id: int            # item id (or a negative/synthetic id for folder-based regression clips)
    text: str          # the reviewed transcript
    audio: np.ndarray  # float32 mono 16 kHz
    # A long recording made of several sentences: each one, so its errors can be told apart.
    parts: tuple[str, ...] = ()



def log_mel(feature_extractor: Any, audios: Sequence[np.ndarray]) -> torch.Tensor:
    """Log-mel features (batch, mels, 3000) of clips, each cut to Whisper's 30 s window."""
    clipped = [np.asarray(a, dtype=np.float32)[:MAX_SECONDS * SAMPLE_RATE] for a in audios]
    return feature_extractor(clipped, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features


def batched_features(feature_extractor: Any, audios: Sequence[np.ndarray], batch_size: int,
                     on_batch: Callable[[int], None] = lambda done: None) -> list[torch.Tensor]:
    """Features of each clip, extracted a batch at a time; `on_batch(done)` runs after each batch
    so a caller can report progress or cancel."""
    out: list[torch.Tensor] = []
    for start in range(0, len(audios), batch_size):
        out.extend(log_mel(feature_extractor, audios[start:start + batch_size]))
        on_batch(len(out))
    return out


class SpeechCollator:
    """Batches of {"inputs", "decoder_input_ids", "labels"} for Whisper, from items holding a whole
    target sequence (stt.finetune.labels.Target: <|startoftranscript|> first) and how many of its
    leading targets the loss leaves out.

    As HF's DataCollatorSpeechSeq2SeqWithPadding, labels are padded with -100 so
    the loss ignores the padding; the decoder's input is given too instead of
    being shifted from the labels, because a target the loss skips must still
    be read by the decoder.
    """

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
        # Every input has the same shape (30 s of mels, or the encoder's 1500 states),
        # so the inputs stack without padding.
        inputs = torch.stack([item["inputs"] for item in items])
        longest = max(len(item["labels"]) for item in items) - 1
        decoder_input_ids = torch.full((len(items), longest), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(items), longest), IGNORE_INDEX, dtype=torch.long)
        for row, item in enumerate(items):
            ids, skip = torch.as_tensor(item["labels"], dtype=torch.long), item.get("skip", 0)
            decoder_input_ids[row, :len(ids) - 1] = ids[:-1]
            labels[row, skip:len(ids) - 1] = ids[1 + skip:]
        batch: dict[str, Any] = {"inputs": inputs, "decoder_input_ids": decoder_input_ids, "labels": labels}
        if all("frames" in item for item in items):
            # The batch trains the leading states of its longest clip (stt.finetune.frozen_tail).
            batch["frames"] = max(item["frames"] for item in items)
        return batch
