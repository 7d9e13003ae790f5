"""The optimisation loop's stop before memorisation and its blend with the starting weights,
on a model small enough to reason about."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import torch

from stt.finetune.data import SpeechCollator
from stt.finetune.loop import BLEND_SHARES, _batches, optimise
from utils.config import TrainingConfig


def _setup(epochs: int, patience: int, blend: bool = False):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    items = [{"inputs": (lambda x=x: x), "labels": [1, 2]} for x in torch.randn(6, 4)]
    # The "loss" pulls the output towards 1: every step changes the weights.
    forward = lambda inputs, decoder_input_ids, labels, frames: SimpleNamespace(  # noqa: E731
        loss=((model(inputs) - 1) ** 2).mean())
    cfg = dataclasses.replace(TrainingConfig(), epochs=epochs, patience=patience, batch_size=2, learning_rate=0.05,
                              warmup_ratio=0.0, blend=blend)
    return model, items, forward, cfg


def _run(losses: list[float], epochs: int = 8, patience: int = 2, blend: bool = False):
    """Train with validation losses scripted in call order; (result, weights each call saw, model)."""
    model, items, forward, cfg = _setup(epochs, patience, blend)
    seen: list[torch.Tensor] = []   # the weights each validation saw

    def validate(on_batch) -> float:
        seen.append(model.weight.detach().clone())
        on_batch(1, 1)
        return losses[len(seen) - 1]

    result = optimise(model, items, "cpu", cfg, SpeechCollator(0), forward, lambda *a: None, validate)
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
    result = optimise(model, items, "cpu", cfg, SpeechCollator(0), forward, lambda *a: None,
                   lambda on_batch: calls.append(1) or 1.0)
    assert calls == [] and (result.epochs_run, result.best_epoch) == (3, 3) and result.validation_losses == []


def test_the_blend_keeps_the_share_of_the_change_with_the_lowest_loss():
    start = _setup(8, 2)[0].weight.detach().clone()   # the same seed gives the same starting weights
    # Four epochs (epoch 2 kept), then one validation per share tried: 0.6 is the lowest.
    result, seen, model = _run([3.0, 2.0, 2.5, 2.6, 1.9, 1.5, 1.8, 1.95, 2.1], blend=True)
    assert (result.epochs_run, result.best_epoch, result.blend) == (4, 2, 0.6)
    assert len(seen) == 4 + len(BLEND_SHARES)
    kept = seen[1]
    for share, weights in zip(BLEND_SHARES, seen[4:]):
        assert torch.allclose(weights, start + share * (kept - start))
    assert torch.allclose(model.weight, start + 0.6 * (kept - start))


def test_the_blend_keeps_the_whole_change_when_no_share_does_better():
    result, seen, model = _run([3.0, 2.0, 1.0] + [1.5] * len(BLEND_SHARES), epochs=3, blend=True)
    assert (result.best_epoch, result.blend) == (3, 1.0) and torch.equal(model.weight, seen[2])


def test_each_check_and_the_blend_move_a_bar_and_are_timed_apart_from_training():
    from stt.finetune.timings import PhaseClock

    model, items, forward, cfg = _setup(epochs=3, patience=2, blend=True)
    reports: list[tuple[str, int, int]] = []
    clock = PhaseClock()

    def validate(on_batch) -> float:
        for done in (1, 2):
            on_batch(done, 2)
        return 1.0

    optimise(model, items, "cpu", cfg, SpeechCollator(0), forward, lambda phase, step, total, loss:
          reports.append((phase, step, total)), validate, clock)
    checks = [r for r in reports if r[0] == "validating"]
    assert checks == [("validating", 1, 2), ("validating", 2, 2)] * 3   # after each of the three epochs
    # The blend's checks count as one bar over every share tried.
    shares = len(BLEND_SHARES)
    assert [r for r in reports if r[0] == "blending"] == [("blending", n, 2 * shares) for n in range(1, 2 * shares + 1)]
    assert set(clock.seconds) == {"training", "validation", "blend"}


def test_a_loss_that_is_not_a_number_stops_the_run_with_a_clear_error():
    import pytest

    from stt.finetune.loop import DivergedError

    with pytest.raises(DivergedError, match="diverged.*learning_rate"):
        _run([3.0, float("nan")])


def test_an_epochs_batches_hold_every_item_once_and_items_of_about_one_length():
    """With the frozen tail a batch costs its longest clip: a joined window among short clips made each batch
    it fell in as long as itself. Batches are of like lengths, in a shuffled order that the seed fixes."""
    items = [{"frames": 200 if i % 5 == 0 else 60 + i} for i in range(40)]
    batches = _batches(items, 8, torch.Generator().manual_seed(1))
    assert sorted(i for batch in batches for i in batch) == list(range(40))
    longest = [max(items[i]["frames"] for i in batch) for batch in batches]
    padded = sum(longest[b] * len(batch) for b, batch in enumerate(batches))
    assert padded < 1.2 * sum(item["frames"] for item in items)  # the eight windows batched together
    assert batches == _batches(items, 8, torch.Generator().manual_seed(1))
    assert batches != _batches(items, 8, torch.Generator().manual_seed(2))
    plain = [{} for _ in range(20)]  # no frozen tail: the shuffle alone
    assert sorted(i for batch in _batches(plain, 8, torch.Generator()) for i in batch) == list(range(20))
