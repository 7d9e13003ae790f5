"""The training forward pass: from a batch's inputs (cached encoder states, or log-mel features) to the
model's output and loss, through the trained top of the encoder where a cached mode keeps the bottom frozen."""
from __future__ import annotations

from typing import Any

import torch

from stt.finetune.cross_attention import absorbed_cross_attention
from stt.finetune.encoder_states import EncoderSplit
from stt.finetune.frozen_tail import top_with_frozen_tail
from stt.finetune.loop import Forward


def forward_pass(trained: Any, split: EncoderSplit | None) -> Forward:
    """One training forward pass: from cached bottom states through the trained top (with the frozen
    tail when the batch says how many states train), or from features."""
    if split is not None:
        def from_states(states: torch.Tensor, decoder_input_ids: torch.Tensor, labels: torch.Tensor,
                        frames: int | None) -> Any:
            top = split.top(states) if frames is None else top_with_frozen_tail(split, states, frames)
            with absorbed_cross_attention(trained):
                return trained(encoder_outputs=(top,), decoder_input_ids=decoder_input_ids, labels=labels,
                               use_cache=False)
        return from_states
    return lambda features, decoder_input_ids, labels, frames: trained(
        input_features=features, decoder_input_ids=decoder_input_ids, labels=labels)
