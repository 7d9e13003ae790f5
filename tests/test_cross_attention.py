"""The decoder's cross-attention without projecting the encoder states: the same loss and gradients as HF's."""
from __future__ import annotations

import pytest
import torch
from transformers import WhisperForConditionalGeneration

from stt.finetune.cross_attention import absorbed_cross_attention
from tests import tiny_whisper


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> WhisperForConditionalGeneration:
    return WhisperForConditionalGeneration.from_pretrained(str(tiny_whisper.build(tmp_path_factory.mktemp("m"))))


def _loss_and_grads(model, states: torch.Tensor, labels: torch.Tensor) -> tuple[float, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    loss = model(encoder_outputs=(states,), labels=labels, use_cache=False).loss
    loss.backward()
    return loss.detach().item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("tokens", [5, 40])  # 40 x 4 heads is over the width (64): HF's own path
def test_same_loss_and_gradients_as_the_projected_keys(model, tokens: int) -> None:
    torch.manual_seed(0)
    states = torch.randn(3, 1500, model.config.d_model, requires_grad=True)
    labels = torch.randint(0, 50000, (3, tokens))
    plain_loss, plain = _loss_and_grads(model, states, labels)
    plain_states = states.grad.clone()
    states.grad = None
    with absorbed_cross_attention(model):
        loss, grads = _loss_and_grads(model, states, labels)
    assert loss == pytest.approx(plain_loss, rel=1e-5)
    assert grads.keys() == plain.keys()
    for name, grad in grads.items():
        assert torch.allclose(grad, plain[name], rtol=1e-3, atol=1e-6), name
    assert torch.allclose(states.grad, plain_states, rtol=1e-3, atol=1e-7)


def test_the_model_is_left_as_it_was(model) -> None:
    with absorbed_cross_attention(model):
        pass
    assert all("forward" not in vars(layer.encoder_attn) for layer in model.get_decoder().layers)


def test_in_training_mode_too(model) -> None:
    """Training runs the model in train mode: the same loss and gradients there (no attention dropout)."""
    model.train()
    try:
        test_same_loss_and_gradients_as_the_projected_keys(model, 5)
    finally:
        model.eval()


def test_attention_dropout_in_training_takes_hfs_own_path(model) -> None:
    """With dropout on the attention weights, HF draws the mask: the rewrite steps aside, so a seed gives
    the very loss HF's path gives."""
    torch.manual_seed(1)
    states, labels = torch.randn(2, 1500, model.config.d_model), torch.randint(0, 50000, (2, 5))
    model.train()
    layers = [layer.encoder_attn for layer in model.get_decoder().layers]
    for attn in layers:
        attn.dropout = 0.3
    try:
        torch.manual_seed(2)
        plain = model(encoder_outputs=(states,), labels=labels, use_cache=False).loss.item()
        torch.manual_seed(2)
        with absorbed_cross_attention(model):
            absorbed = model(encoder_outputs=(states,), labels=labels, use_cache=False).loss.item()
    finally:
        for attn in layers:
            attn.dropout = 0.0
        model.eval()
    assert absorbed == plain
