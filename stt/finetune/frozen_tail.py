"""Training the top of the encoder on a clip's own states, with the window's padding frozen.

Whisper pads every clip to a 30 s window, so the trained top layers of the
encoder ("adapt" mode) run over 1,500 states for a 3 s clip's 150: on a CPU
that is most of a training step. Cutting the window short is not an answer:
the top layers attend over the padding, and with only 50 to 1,000 states of
context their output on the clip's own frames moved by 17% to 12% (relative
L2 on tiny.en), enough for greedy decoding to loop, and training on windows
cut to the clip plus 1 s lost WER on unseen clips (7.2% to 15.2%) and on
ordinary speech (docs/performance.md, "The frozen tail").

So the whole window stays, but only the clip's own states (plus a margin) are
computed with gradients. For the rest, "the tail", each trained layer reads the
hidden states that the starting weights gave it, computed once per run with
no gradient: their keys and values still go through the layer's current
projections, so the clip attends over the whole window as the full model
does, and after the last layer they are appended to the encoder output for
the decoder. At the starting weights this is exactly the full forward
(tests/test_frozen_tail.py); as training moves the weights only the tail's
hidden states lag behind, by as much as the weights moved. Measuring (the
WER before and after, what the deploy rule reads) decodes the saved model
as the assistant does (stt/assistant), the whole window included.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from stt.finetune.data import SAMPLE_RATE
from stt.finetune.encoder_states import EncoderSplit

# Encoder states per second of audio (two convolutions, the second with stride 2, over 100 mel frames a second).
STATES_PER_SECOND = 50
# States after the clip's end that are trained with gradients too: the boundary, where the clip's
# speech and the padding meet, is where the tail's stale states would differ most.
MARGIN_STATES = 50


def clip_states(samples: int, window: int) -> int:
    """How many leading states of the window hold a clip of `samples` audio samples, plus the margin."""
    return min(window, math.ceil(samples * STATES_PER_SECOND / SAMPLE_RATE) + MARGIN_STATES)


def _layer(layer: Any, clip: torch.Tensor, tail: torch.Tensor) -> torch.Tensor:
    """WhisperEncoderLayer's forward for the clip's states only, attending over clip and frozen tail.

    The attention module's cross-attention path does exactly this: queries from the
    first argument, keys and values (through the same projections) from the second.
    """
    normed = layer.self_attn_layer_norm(torch.cat([clip, tail], dim=1))
    attended, _ = layer.self_attn(hidden_states=normed[:, :clip.shape[1]], key_value_states=normed)
    hidden = clip + nn.functional.dropout(attended, p=layer.dropout, training=layer.training)
    inner = layer.activation_fn(layer.fc1(layer.final_layer_norm(hidden)))
    inner = nn.functional.dropout(inner, p=layer.activation_dropout, training=layer.training)
    hidden = hidden + nn.functional.dropout(layer.fc2(inner), p=layer.dropout, training=layer.training)
    if hidden.dtype == torch.float16:  # as WhisperEncoderLayer does: fp16 overflows to inf in long runs
        limit = torch.finfo(hidden.dtype).max - 1000
        hidden = torch.clamp(hidden, min=-limit, max=limit)
    return hidden


def top_with_frozen_tail(split: EncoderSplit, stack: torch.Tensor, frames: int) -> torch.Tensor:
    """The encoder's output for a batch of `FrozenTail.get` stacks (batch, k + 1, positions, d_model):
    the first `frames` states through the trained layers with gradients, the rest as the starting
    weights left them."""
    hidden = stack[:, 0, :frames]
    for index, layer in enumerate(split.top_layers):
        hidden = _layer(layer, hidden, stack[:, index, frames:])
    return split.encoder.layer_norm(torch.cat([hidden, stack[:, -1, frames:]], dim=1))
