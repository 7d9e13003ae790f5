"""Training data for the Whisper engine: samples, labels, log-mel features and the padding collator.

Kept apart from the training loop so the pieces the tests pin down (how labels
are tokenized, how a batch is padded) can be read on their own.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from stt.models.model_format import MULTILINGUAL_MIN_VOCAB
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


def is_multilingual(model: Any) -> bool:
    return int(model.config.vocab_size) >= MULTILINGUAL_MIN_VOCAB


def configure_tokenizer(tokenizer: Any, multilingual: bool) -> None:
    """Make `tokenizer(text)` produce Whisper's own training prefix.

    English-only models were trained on <|startoftranscript|><|notimestamps|> text
    <|endoftext|>; multilingual ones on <|startoftranscript|><|en|><|transcribe|>
    <|notimestamps|> text <|endoftext|>. Timestamps are never predicted: the
    reviewed transcripts have none, and inference runs with <|notimestamps|>.
    """
    if multilingual:
        tokenizer.set_prefix_tokens(language="en", task="transcribe", predict_timestamps=False)
    else:
        tokenizer.set_prefix_tokens(predict_timestamps=False)


def make_labels(tokenizer: Any, text: str, max_length: int) -> list[int]:
    """Token ids of the transcript with the prefix and <|endoftext|>, as in HF's speech-recognition example.

    A space is put in front because Whisper writes every transcript that way
    (its first word is the 'Ġword' token, never the bare 'word'); training on
    the bare form would teach it a new first token for no reason. An empty text (a clip
    without speech) is the prefix and <|endoftext|> alone: "nothing was said".
    """
    ids = list(tokenizer(" " + text.strip() if text.strip() else "").input_ids)
    if len(ids) > max_length:
        # Keep <|endoftext|> so the model still learns to stop.
        ids = ids[:max_length - 1] + ids[-1:]
    return ids


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
    """Batches of {"inputs": features or encoder states, "labels": ids} padded for Whisper.

    Follows HF's DataCollatorSpeechSeq2SeqWithPadding: labels are padded with
    -100 so the loss ignores the padding, and a leading decoder_start token is
    stripped because the model prepends it again when it shifts the labels
    right to build the decoder input.
    """

    def __init__(self, decoder_start_token_id: int) -> None:
        self.decoder_start_token_id = decoder_start_token_id

    def __call__(self, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
        # Every input has the same shape (30 s of mels, or the encoder's 1500 states),
        # so the inputs stack without padding.
        inputs = torch.stack([item["inputs"] for item in items])
        longest = max(len(item["labels"]) for item in items)
        labels = torch.full((len(items), longest), IGNORE_INDEX, dtype=torch.long)
        for row, item in enumerate(items):
            labels[row, :len(item["labels"])] = torch.as_tensor(item["labels"], dtype=torch.long)
        if longest and bool((labels[:, 0] == self.decoder_start_token_id).all()):
            labels = labels[:, 1:]
        batch: dict[str, Any] = {"inputs": inputs, "labels": labels}
        if all("frames" in item for item in items):
            # The batch trains the leading states of its longest clip (stt.finetune.frozen_tail).
            batch["frames"] = max(item["frames"] for item in items)
        return batch
