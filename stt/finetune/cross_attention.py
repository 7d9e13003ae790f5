"""The decoder's cross-attention computed without projecting the encoder's 1,500 states.

Each decoder layer projects all 1,500 encoder states to keys and values
(2 x 1,500 x d^2 multiply-adds) so that a transcript of some twenty tokens
can attend to them. Since a key is W_k x, a score q . W_k x is (W_k^T q) . x,
and a weighted sum of values is W_v (sum of a x) + b_v: projecting the
queries back and the attended sum forward gives the same result in
heads x tokens x 1,500 x d multiply-adds, several times fewer while a batch's
labels are shorter than d / heads tokens (tiny.en: 64; distil-small.en: 64),
as a voice command's are. Used for training and its validation, where the
keys and values are computed once per step and never reused; generation keeps
HF's own path and its cache.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import torch


def _absorbed(attn: Any, original: Callable[..., Any], hidden_states: torch.Tensor,
              key_value_states: torch.Tensor | None = None, cache: Any = None,
              attention_mask: torch.Tensor | None = None, output_attentions: bool = False,
              **kwargs: Any) -> tuple[torch.Tensor, None]:
    """WhisperAttention.forward for cross-attention without a cache or mask; anything else goes to `original`."""
    batch, tokens, width = hidden_states.shape
    heads, head_dim = attn.num_heads, attn.head_dim
    # Attention dropout while training draws its own mask over the weights: the original path keeps HF's.
    if (key_value_states is None or cache is not None or attention_mask is not None or output_attentions
            or attn.k_proj.bias is not None or heads * tokens >= width or (attn.training and attn.dropout > 0)):
        return original(hidden_states, key_value_states=key_value_states, cache=cache,
                        attention_mask=attention_mask, output_attentions=output_attentions, **kwargs)
    # Scaled as HF scales it (before the product), so the two paths round alike.
    query = (attn.q_proj(hidden_states) * attn.scaling).view(batch, tokens, heads, head_dim).transpose(1, 2)
    # (batch, heads, tokens, width): each head's query mapped back through its key projection.
    query = torch.einsum("bhtk,hkw->bhtw", query, attn.k_proj.weight.view(heads, head_dim, width))
    scores = torch.bmm(query.reshape(batch, heads * tokens, width), key_value_states.transpose(1, 2))
    attended = torch.bmm(scores.softmax(dim=-1), key_value_states).view(batch, heads, tokens, width)
    values = torch.einsum("bhtw,hkw->bthk", attended, attn.v_proj.weight.view(heads, head_dim, width))
    if attn.v_proj.bias is not None:  # the weights of a row sum to 1, so the value bias passes through once
        values = values + attn.v_proj.bias.view(heads, head_dim)
    return attn.out_proj(values.reshape(batch, tokens, width)), None


@contextmanager
def absorbed_cross_attention(model: Any) -> Iterator[None]:
    """Within the block, every decoder layer's cross-attention takes the cheaper path; the model's
    modules are left as they were afterwards (so it saves and generates as any Whisper)."""
    modules = [layer.encoder_attn for layer in model.get_decoder().layers]
    for module in modules:
        module.forward = partial(_absorbed, module, module.forward)
    try:
        yield
    finally:
        for module in modules:
            del module.forward
