"""The optimisation loop's stop before memorisation, on a model small enough to reason about."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import torch

from stt.finetune.data import SpeechCollator
from stt.finetune.loop import train
from utils.config import TrainingConfig


def _setup(epochs: int, patience: int):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    items = [{"inputs": (lambda x=torch.randn(4): x), "labels": [1, 2]} for _ in range(6)]
    # The "loss" pulls the output towards 1: every step changes the weights.
    forward = lambda inputs, labels: SimpleNamespace(loss=((model(inputs) - 1) ** 2).mean())  # noqa: E731
    cfg = dataclasses.replace(TrainingConfig(), epochs=epochs, patience=patience, batch_size=2, learning_rate=0.05,
                              warmup_ratio=0.0)
    return model, items, forward, cfg


def _run(losses: list[float], epochs: int = 8, patience: int = 2):
    model, items, forward, cfg = _setup(epochs, patience)
    seen: list[torch.Tensor] = []   # the weights each validation saw

    def validate() -> float:
        seen.append(model.weight.detach().clone())
        return losses[len(seen) - 1]

    result = train(model, items, "cpu", cfg, SpeechCollator(-1), forward, lambda *a: None, validate)
    return result, seen, model


def test_the_run_ends_with_the_weights_of_the_best_epoch_and_stops_after_patience():
    result, seen, model = _run([3.0, 2.0, 2.5, 2.6, 1.0, 0.5])
    assert result.epochs_run == 4 and result.best_epoch == 2      # epochs 3 and 4 did not beat epoch 2
    assert result.validation_losses == [3.0, 2.0, 2.5, 2.6]
    assert result.steps == 4 * 3                                  # 6 items in batches of 2, four epochs
    assert torch.equal(model.weight, seen[1]) and not torch.equal(model.weight, seen[3])


def test_a_new_low_resets_the_patience():
    result, seen, model = _run([3.0, 2.0, 2.5, 1.5, 1.6, 1.7, 0.1, 0.1])
    assert (result.epochs_run, result.best_epoch) == (6, 4)
    assert torch.equal(model.weight, seen[3])


def test_the_last_epoch_is_kept_when_it_is_the_best():
    result, seen, model = _run([3.0, 2.0, 1.0], epochs=3)
    assert (result.epochs_run, result.best_epoch) == (3, 3) and torch.equal(model.weight, seen[2])


def test_patience_zero_trains_every_epoch_without_validating():
    model, items, forward, cfg = _setup(epochs=3, patience=0)
    calls: list[int] = []
    result = train(model, items, "cpu", cfg, SpeechCollator(-1), forward, lambda *a: None,
                   lambda: calls.append(1) or 1.0)
    assert calls == [] and (result.epochs_run, result.best_epoch) == (3, 3) and result.validation_losses == []
