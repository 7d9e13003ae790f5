"""The training engine: fine-tune a Hugging Face Whisper model on reviewed clips.

Pure functions with no knowledge of the database, jobs or deployment: the job
runner hands in samples and a config, gets the saved model and numbers back, and
measures the model (as the assistant hears with it: stt/assistant) before it
decides what to deploy. Cancellation is cooperative (`should_stop` is polled between steps and
batches) because a training thread cannot be killed safely.

How each mode (adapt, decoder, full, lora) trains is in stt/finetune/modes.py.

Forgetting is held off by what the caller passes as `rehearsal`: clips
trained on beside the new ones (earlier runs' items and the built-in
ordinary speech, stt.finetune.ordinary), never measured as the run's own;
and memorising by the stop in stt.finetune.loop, which watches the loss of
every measured set and keeps the best epoch.
"""
from __future__ import annotations

import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import WhisperForConditionalGeneration, WhisperProcessor

from stt.finetune import modes
from stt.finetune.data import Sample, SpeechCollator
from stt.finetune.forward import forward_pass
from stt.finetune.labels import learned_forms, target, timed_target, token_layout
from stt.finetune.loop import optimise, watched_loss
from stt.finetune.ordinary import watched as gate_watched
from stt.finetune.run_inputs import prepare
from stt.finetune.timings import PhaseClock
from stt.models.model_format import is_multilingual
from utils import disk
from utils.config import TrainingConfig

__all__ = ["Sample", "Progress", "Cancelled", "EngineResult", "pick_device", "load_model", "fine_tune"]

# A clip without speech is trained on this many times an epoch. Its target is two tokens (no speech,
# end), against a dozen for a spoken sentence, so under the token-mean loss it would weigh a fifth of
# a sentence; measured in docs/performance.md, "Clips without speech".
NO_SPEECH_REPEATS = 4
# The check after each epoch (and the blend's) runs the trained top of the encoder through the frozen tail,
# as training does, or with this over the whole window; measured in docs/performance.md, "The check after
# each epoch: frozen tail or whole window".
EXACT_VALIDATION = False


@dataclass
class Progress:
    phase: str         # "preparing" | "training" | "validating" | "blending" | "evaluating" | "saving"
    step: int
    total: int
    loss: float | None = None
    stage: str = ""    # "before" or "after" training, for "evaluating"


class Cancelled(Exception):
    """should_stop() turned true; nothing was saved."""


@dataclass
class EngineResult:
    """What a run of the loop did; what the model it saved hears is measured apart, the way the
    assistant decodes (stt/assistant/evaluation.py), on the folder the assistant will load."""
    mode: str
    device: str
    max_epochs: int                       # the most the run could train (the config's)
    steps: int
    train_items: int
    train_loss: float | None              # mean training loss of the epoch whose weights were kept
    train_seconds: float
    rehearsal_items: int = 0              # earlier and built-in clips trained on beside the new ones
    timestamped_items: int = 0            # learners taught in Whisper's timestamped form (stt.finetune.labels)
    trained_layers: int | None = None     # encoder layers trained (adapt), 0 (decoder), None (all)
    encoded_clips: int = 0                # clips whose frozen encoder states this run computed (not cached)
    epochs_run: int = 0                   # before the stop before memorisation ended it (stt.finetune.loop)
    best_epoch: int = 0                   # whose weights the saved model has
    blend: float = 1.0                    # share of that epoch's change from the starting model kept
    validation_losses: list[float] = field(default_factory=list)
    # The measured sets whose teacher-forced loss chose the epoch and the blend: name -> clips watched.
    chose: dict[str, int] = field(default_factory=dict)
    # Wall seconds of each phase (stt.finetune.timings.PHASES): loading, encoding, training, ...
    phase_seconds: dict[str, float] = field(default_factory=dict)


def pick_device() -> str:
    """"cuda" if a CUDA GPU is usable, else "cpu"."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


@contextmanager
def repeatable(device: str) -> Iterator[None]:
    """The same clips and settings train the same weights on a CPU. Without this two clicks of the same data
    differed in the seventh digit of their losses (a backward kernel's threads adding in any order); the
    int8 model the assistant decodes turns that into other words on the clips at the edge of its
    temperature fallback (sounds without speech written as words by one click and not the other, a
    deploy refused by one and made by the other). Costs nothing measurable; on CUDA, where deterministic
    kernels need settings of their own and cost more, left as it is."""
    if device != "cpu":
        yield
        return
    was, filled = torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory
    torch.use_deterministic_algorithms(True)
    torch.utils.deterministic.fill_uninitialized_memory = False  # only a debugging aid, and it costs time
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was)
        torch.utils.deterministic.fill_uninitialized_memory = filled


def load_model(model_dir: Path, device: str) -> tuple[Any, Any]:
    """(processor, model) on `device`, with a sentence saying what to do when the folder is incomplete."""
    try:
        processor = WhisperProcessor.from_pretrained(str(model_dir))
        model = WhisperForConditionalGeneration.from_pretrained(str(model_dir), dtype=torch.float32).to(device)
    except Exception as exc:  # noqa: BLE001 - safetensors, OSError, ValueError...: all mean the same to the user
        raise RuntimeError(f"the model at {model_dir} cannot be loaded ({exc}); it may be incomplete: "
                           "copy it again, or roll back to a kept version") from exc
    return processor, model


def fine_tune(model_dir: Path, out_dir: Path, clips: list[Sample], watched: dict[str, Sequence[Sample]],
              cfg: TrainingConfig, progress: Callable[[Progress], None] = lambda p: None,
              should_stop: Callable[[], bool] = lambda: False, *, rehearsal: Sequence[Sample] = (),
              cache_dir: Path | None = None, language: str = "en", keep_free_mb: int = disk.AUTO) -> EngineResult:
    """Fine-tune the HF Whisper model in `model_dir` on the new `clips` (plus `rehearsal`) and save it to `out_dir`.

    `watched` holds the clips the run never trains on whose loss chooses the epoch and the blend
    (stt.finetune.loop): "heldout", "regression", "no_speech" (held-out clips without speech) and
    "ordinary" (the built-in gate, of which an even spread is watched). Whether the saved model is
    good enough to deploy is measured and decided by the caller. `language` is the one spoken
    (a multilingual model's labels name it). In the cached modes the frozen encoder states are
    kept under `cache_dir` (a temporary folder when None), leaving `keep_free_mb` free on its disk
    (utils/disk.py). `out_dir` is only written once training completed; `Cancelled` is raised as soon
    as `should_stop()` is true at a step or batch boundary.
    """
    if not clips:
        raise ValueError("no samples to train on")
    device = pick_device()
    mode = modes.resolve(cfg.mode, device)
    # Every core: PyTorch's default can be fewer than the machine has (e.g. under a job
    # runner's thread); training is the only heavy work running while a job does. OMP_NUM_THREADS,
    # where set, is the OpenMP convention for sharing the cores with other work (the parallel tests).
    shared = os.environ.get("OMP_NUM_THREADS", "")
    torch.set_num_threads(cfg.num_threads or (int(shared) if shared.isdigit() else 0) or os.cpu_count() or 1)
    _seed(cfg.seed)

    def report(p: Progress) -> None:
        progress(p)
        if should_stop():
            raise Cancelled(f"training stopped during {p.phase}")

    clock = PhaseClock()
    report(Progress("preparing", 0, 1))
    with clock("loading"):
        processor, model = load_model(model_dir, device)
    groups = {name: list(gate_watched(group) if name == "ordinary" else group)
              for name, group in watched.items() if group}
    with tempfile.TemporaryDirectory() as scratch, repeatable(device):
        result = _run(model, processor, mode, device, Path(out_dir), clips, list(rehearsal), groups, cfg,
                      Path(cache_dir) if cache_dir else Path(scratch) / "states", Path(scratch), report, clock,
                      language, keep_free_mb)
    result.phase_seconds = clock.rounded()
    return result


def _run(model: Any, processor: Any, mode: modes.Mode, device: str, out_dir: Path, clips: list[Sample],
         rehearsal: list[Sample], watched: dict[str, list[Sample]], cfg: TrainingConfig, cache_dir: Path,
         scratch: Path, report: Callable[[Progress], None], clock: PhaseClock, language: str,
         keep_free_mb: int) -> EngineResult:
    """fine_tune's body, once the model is loaded: inputs, train, save."""
    # A share of the spoken clips is learned with timestamps, a few to a window (stt/finetune/labels.py).
    plain, windows = learned_forms([*clips, *rehearsal])
    learners = [*plain, *(window for window, _ in windows)]
    with clock("encoding"):
        inputs = prepare(model, processor, mode, device, learners, watched, cfg, cache_dir, scratch,
                         lambda done, total: report(Progress("preparing", done, total)), keep_free_mb)
    max_labels = int(model.config.max_target_positions)
    layout = token_layout(processor.tokenizer, is_multilingual(model), language)
    segments = {id(window): spans for window, spans in windows}
    # Clips marked without speech teach the no-speech position; then spoken clips teach its other side.
    learn_start = any(not s.text for s in learners)

    def item(sample: Sample, exact: bool = False) -> dict[str, Any]:
        """What the loop trains or validates on: how to read its input, and its target."""
        aim = timed_target(layout, processor.tokenizer, segments[id(sample)], max_labels, learn_start) \
            if id(sample) in segments else \
            target(layout, processor.tokenizer, sample.text, max_labels, learn_start=learn_start)
        return {**inputs.item(sample, processor.feature_extractor, exact), "labels": aim.ids, "skip": aim.skip}

    train_items = [item(s) for s in learners for _ in range(1 if s.text else NO_SPEECH_REPEATS)]
    started = time.perf_counter()
    if inputs.split is not None:
        inputs.split.freeze()  # a cached mode: only the layers above the cached bottom train
        trained = model
    else:
        trained = mode.wrap(model, cfg)
    collator, forward = SpeechCollator(layout.eot), forward_pass(trained, inputs.split)
    groups = [[item(s, exact=EXACT_VALIDATION) for s in group] for group in watched.values()]
    looped = optimise(trained, train_items, device, cfg, collator, forward,
                      lambda phase, step, total, loss: report(Progress(phase, step, total, loss)),
                      (lambda on_batch: watched_loss(trained, forward, groups, collator, device,
                                                     cfg.batch_size, on_batch)) if groups else None, clock)
    train_seconds = time.perf_counter() - started
    model = mode.finish(trained)
    report(Progress("saving", 0, 1))
    with clock("saving"):
        disk.ensure_room(out_dir.parent, sum(p.numel() * p.element_size() for p in model.parameters()),
                         "the trained model", "Free space on that disk.", keep_free_mb)
        _save(model, processor, out_dir)
    report(Progress("saving", 1, 1))
    return EngineResult(
        mode=mode.name, device=device, max_epochs=cfg.epochs, steps=looped.steps, train_items=len(clips),
        train_loss=looped.train_loss, train_seconds=train_seconds, rehearsal_items=len(rehearsal),
        timestamped_items=sum(len(window.parts) for window, _ in windows), epochs_run=looped.epochs_run,
        best_epoch=looped.best_epoch,
        blend=looped.blend, validation_losses=looped.validation_losses,
        trained_layers=None if inputs.split is None else inputs.split.trained_layers, encoded_clips=inputs.encoded,
        chose={name: len(group) for name, group in watched.items()})


def _save(model: Any, processor: Any, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))  # safetensors, config and generation_config.json
    processor.save_pretrained(str(out_dir))
    # transformers 5 nests the feature extractor in processor_config.json; faster-whisper and
    # the CTranslate2 export read the mel settings from preprocessor_config.json.
    processor.feature_extractor.save_pretrained(str(out_dir))
