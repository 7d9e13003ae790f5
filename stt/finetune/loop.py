"""The optimisation loop, and the stop before memorisation that ends it at the best epoch.

A run trains for at most `epochs` epochs. After each one, the loss of the
clips the run measures but never trains on (held-out items, regression
checks, the built-in gate) is computed teacher-forced, which is cheap next to
the generation the WER needs; the weights of the epoch with the lowest loss
are kept, and the run stops once `patience` epochs in a row did not improve on
it. Repeated epochs over the same sentences are what made the model write
them everywhere (measured in docs/performance.md, "Training"); the measured
sets are exactly the speech the user did not train on, so their loss rising
is that memorisation beginning.

The kept epoch is then blended with the weights the run started from: each
share in BLEND_SHARES of the trained change is tried and the one with the
lowest loss on the same sets is kept (the "weight averaging" that Wortsman
et al. call WiSE-FT, and Vander Eeckt and Van hamme measured against
forgetting in continual ASR). The straight line from the deployed model to the
trained one passes through models that forget less: over three rounds of
tiny.en (docs/performance.md, "Three rounds"; the same benchmark without the
blend in the git history of that file), round 1's WER rose by +1.4 points by
round 3 instead of +3.6 (0.0 instead of +2.2 on clips no run sees), and
ordinary speech ended at 16.7% instead of 22.7%, for less of the newest
round's gain (12.3% instead of 7.7% on its unseen clips).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import get_linear_schedule_with_warmup

from stt.finetune.data import IGNORE_INDEX, SpeechCollator
from stt.finetune.timings import PhaseClock
from utils.config import TrainingConfig

# Each item: {"inputs": zero-argument function giving its input tensor, "labels": the target's token ids
# (<|startoftranscript|> first), "skip": its leading targets the loss leaves out (stt.finetune.labels), and
# optionally "frames": the leading encoder states it trains with gradients}.
Item = dict[str, Any]
# (inputs, decoder input ids, labels, frames): frames is the batch's count of states trained with gradients
# (stt.finetune.frozen_tail) when its items carry one, else None.
Forward = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, int | None], Any]
Report = Callable[[str, int, int, float | None], None]
# A check of the watched clips: given a callback (batches done, batches in all), their loss (watched_loss).
Validate = Callable[[Callable[[int, int], None]], float]
# Shares of the trained change tried against keeping all of it; below a half the new words are mostly lost.
BLEND_SHARES = (0.5, 0.6, 0.7, 0.8, 0.9)
# Batches whose items are sorted by length together before the batches are shuffled (Hugging Face's
# LengthGroupedSampler takes 50; a run's few dozen items fit in eight).
LENGTH_GROUP_BATCHES = 8


def autocast(device: str) -> Any:
    """Mixed precision on CUDA (bf16 where supported: no loss scaling needed); plain fp32 on CPU,
    where autocast brings little speed and costs accuracy."""
    if device != "cuda":
        return nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)


def _param_groups(model: Any, weight_decay: float) -> list[dict[str, Any]]:
    """Trainable parameters, with no weight decay on biases and layer norms (HF Trainer's rule):
    decaying those only pulls the activations' scale and offset towards zero."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if name.endswith("bias") or "layer_norm" in name else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class DivergedError(RuntimeError):
    """The validation loss is no longer a number: what the run trained is unusable."""


def _adamw(groups: list[dict[str, Any]], learning_rate: float) -> torch.optim.Optimizer:
    """AdamW, fused where PyTorch has the kernel (CPU and CUDA): the same update in one pass over the
    weights, 100 ms -> 17 ms a step for tiny.en's 33 M trained weights on 2 cores."""
    try:
        return torch.optim.AdamW(groups, lr=learning_rate, fused=True)
    except (RuntimeError, ValueError):  # a device or dtype without the fused kernel
        return torch.optim.AdamW(groups, lr=learning_rate)


@dataclass
class LoopResult:
    steps: int                      # optimizer steps taken
    epochs_run: int
    best_epoch: int                 # the epoch whose weights the model ends with (1-based)
    train_loss: float | None        # mean training loss of that epoch
    validation_losses: list[float] = field(default_factory=list)  # after each epoch, when validated
    blend: float = 1.0              # share of the trained change kept (1: the kept epoch as trained)


def _batch_loss(chosen: Sequence[Item], collator: SpeechCollator, forward: Forward,
                device: str) -> tuple[torch.Tensor, int]:
    """(mean token loss, tokens counted) of one batch, its inputs read only now."""
    batch = collator([{**item, "inputs": item["inputs"]()} for item in chosen])
    with autocast(device):
        loss = forward(batch["inputs"].to(device), batch["decoder_input_ids"].to(device), batch["labels"].to(device),
                       batch.get("frames")).loss
    return loss, int((batch["labels"] != IGNORE_INDEX).sum())


def watched_loss(model: Any, forward: Forward, groups: Sequence[Sequence[Item]], collator: SpeechCollator,
                 device: str, batch_size: int, on_batch: Callable[[int, int], None] = lambda done, total: None
                 ) -> float:
    """The loss of the clips a run watches but never trains on (they choose the epoch and the blend): the
    mean over `groups` of each group's mean token loss, so a set of a few clips counts as
    much as a large one: the held-out items matter as much as the built-in gate. `on_batch(done,
    total)` runs after each batch, so a caller can move a progress bar or cancel."""
    was_training = model.training
    model.eval()
    means, done = [], 0
    batches = sum(math.ceil(len(group) / batch_size) for group in groups)
    with torch.no_grad():
        for group in groups:
            total, tokens = 0.0, 0
            for start in range(0, len(group), batch_size):
                loss, counted = _batch_loss(group[start:start + batch_size], collator, forward, device)
                total, tokens = total + float(loss) * counted, tokens + counted
                done += 1
                on_batch(done, batches)
            if tokens:
                means.append(total / tokens)
    model.train(was_training)
    return sum(means) / len(means) if means else math.nan


def _batches(items: Sequence[Item], batch_size: int, order: torch.Generator) -> list[list[int]]:
    """One epoch's batches: shuffled, and each of items of about one length, as Hugging Face's
    group_by_length does. With the frozen tail a batch computes as many states as its longest clip
    has (`frames`); a window of three joined clips among short ones made every batch it fell in
    three times as long. Items without `frames` keep the shuffled order."""
    permutation = torch.randperm(len(items), generator=order).tolist()
    span = batch_size * LENGTH_GROUP_BATCHES
    batches = []
    for start in range(0, len(permutation), span):
        group = sorted(permutation[start:start + span], key=lambda i: items[i].get("frames") or 0, reverse=True)
        batches += [group[i:i + batch_size] for i in range(0, len(group), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=order).tolist()]


class _Optimiser:
    """AdamW on the trainable weights with Hugging Face's linear warm-up and decay, gradient clipping and,
    under fp16 autocast (a GPU without bf16), loss scaling: one `step` per batch."""

    def __init__(self, model: Any, trainable: Sequence[tuple[str, torch.Tensor]], cfg: TrainingConfig,
                 total_steps: int, device: str) -> None:
        self.optimizer = _adamw(_param_groups(model, cfg.weight_decay), cfg.learning_rate)
        self.scheduler = get_linear_schedule_with_warmup(self.optimizer, math.ceil(cfg.warmup_ratio * total_steps),
                                                         total_steps)
        # Disabled (bf16, or the CPU's fp32), the scaler is a no-op.
        self.scaler = torch.amp.GradScaler("cuda", enabled=device == "cuda" and not torch.cuda.is_bf16_supported())
        self.weights, self.max_grad_norm = [p for _, p in trainable], cfg.max_grad_norm

    def step(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.weights, self.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()


@dataclass
class _BestEpoch:
    """The stop before memorisation: the weights of the epoch whose watched loss was lowest, and whether
    `patience` epochs in a row have passed without a new low."""
    patience: int
    weights: dict[str, torch.Tensor] | None = None
    loss: float = math.inf
    since: int = 0

    def improved(self, loss: float, trainable: Sequence[tuple[str, torch.Tensor]]) -> bool:
        """Keep the weights if `loss` is a new low; say whether it was."""
        if loss < self.loss:
            self.weights, self.loss, self.since = _copy(trainable), loss, 0
            return True
        self.since += 1
        return False

    def should_stop(self) -> bool:
        return self.since >= self.patience


def _epoch(items: list[Item], batches: list[list[int]], optimiser: _Optimiser, collator: SpeechCollator,
           forward: Forward, device: str, on_step: Callable[[float], None]) -> float:
    """One pass over `batches`; `on_step(loss)` after each optimiser step. The epoch's mean training loss."""
    losses = []
    for batch in batches:
        loss, _ = _batch_loss([items[i] for i in batch], collator, forward, device)
        optimiser.step(loss)
        losses.append(float(loss.detach()))
        on_step(losses[-1])
    return sum(losses) / len(losses)


def _checked(loss: float, epoch: int) -> float:
    if not math.isfinite(loss):
        raise DivergedError(f"the loss on the held-out and check speech is {loss} after epoch {epoch}: training "
                            "diverged. Nothing was deployed; a lower training.learning_rate (or fewer odd "
                            "clips) usually fixes it")
    return loss


def optimise(model: Any, items: list[Item], device: str, cfg: TrainingConfig, collator: SpeechCollator,
             forward: Forward, report: Report, validate: Validate | None = None,
             clock: PhaseClock | None = None) -> LoopResult:
    """Train on `items` for up to cfg.epochs epochs; with `validate` (and cfg.patience > 0), end
    at the epoch of lowest watched loss and stop after cfg.patience epochs without a new low;
    with cfg.blend too, keep the share of that epoch's change whose watched loss is lowest.

    Inputs are read one batch at a time, so cached states never all sit in memory. Progress is
    reported as "training" per step, "validating" per batch of each epoch's check and "blending"
    per batch of the blend's; `clock` gets the seconds of each of the three.
    """
    clock = clock or PhaseClock()
    total = math.ceil(len(items) / cfg.batch_size) * cfg.epochs
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    optimiser = _Optimiser(model, trainable, cfg, total, device)
    order = torch.Generator().manual_seed(cfg.seed)  # the shuffle order depends on the seed alone
    checking = validate is not None and cfg.patience > 0
    start = _copy(trainable) if checking and cfg.blend else None
    result, best = LoopResult(steps=0, epochs_run=0, best_epoch=0, train_loss=None), _BestEpoch(cfg.patience)

    def on_step(loss: float) -> None:
        result.steps += 1
        report("training", result.steps, total, loss)

    for epoch in range(1, cfg.epochs + 1):
        model.train()
        with clock("training"):
            epoch_loss = _epoch(items, _batches(items, cfg.batch_size, order), optimiser, collator, forward, device,
                                on_step)
        result.epochs_run = epoch
        if not checking:
            result.best_epoch, result.train_loss = epoch, epoch_loss
            continue
        with clock("validation"):
            loss = _checked(validate(lambda done, batches: report("validating", done, batches, None)), epoch)
        result.validation_losses.append(loss)
        if best.improved(loss, trainable):
            result.best_epoch, result.train_loss = epoch, epoch_loss
        elif best.should_stop():
            break
    _finish(trainable, start, best, result, validate, report, clock)
    model.eval()
    return result


def _finish(trainable: Sequence[tuple[str, torch.Tensor]], start: dict[str, torch.Tensor] | None, best: _BestEpoch,
            result: LoopResult, validate: Validate | None, report: Report, clock: PhaseClock) -> None:
    """Leave the model at the kept epoch, blended with the starting weights where the blend is on."""
    if best.weights is None:
        return  # nothing watched: the last epoch is kept as trained
    if start is not None and validate is not None:
        with clock("blend"):
            result.blend = _blend(trainable, start, best.weights, best.loss, validate, report)
    elif result.best_epoch != result.epochs_run:
        _set(trainable, best.weights)


def _copy(trainable: Sequence[tuple[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The trained weights on the CPU (the frozen encoder bottom never changes, so it is not copied)."""
    return {name: p.detach().to("cpu", copy=True) for name, p in trainable}


def _set(trainable: Sequence[tuple[str, torch.Tensor]], weights: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for name, p in trainable:
            p.copy_(weights[name].to(p.device))


def _mix(trainable: Sequence[tuple[str, torch.Tensor]], start: dict[str, torch.Tensor],
         end: dict[str, torch.Tensor], share: float) -> None:
    """Set the weights `share` of the way from `start` to `end` (exactly `end` at 1: torch.lerp
    computes the upper half from the end), one tensor at a time to hold no third copy."""
    with torch.no_grad():
        for name, p in trainable:
            p.copy_(torch.lerp(start[name], end[name], share).to(p.device))


def _blend(trainable: Sequence[tuple[str, torch.Tensor]], start: dict[str, torch.Tensor],
           end: dict[str, torch.Tensor], end_loss: float, validate: Validate, report: Report) -> float:
    """Keep the share of the trained change (BLEND_SHARES, or all of it) with the lowest validation loss.

    LoRA's adapters start at a product of zero, so for them this is a path from
    the base model to the trained one too, if not a straight line. The progress counts the
    batches of all the shares' checks as one bar."""
    chosen, lowest = 1.0, end_loss
    for tried, share in enumerate(BLEND_SHARES):
        _mix(trainable, start, end, share)
        loss = validate(lambda done, batches, tried=tried: report(
            "blending", tried * batches + done, len(BLEND_SHARES) * batches, None))
        if loss < lowest:
            chosen, lowest = share, loss
    _mix(trainable, start, end, chosen)
    return chosen
