"""The training engine: fine-tune a Hugging Face Whisper model on reviewed clips and measure WER.

Pure functions with no knowledge of the database, jobs or deployment: the job
runner hands in samples and a config, gets numbers back, and decides what to
deploy. Cancellation is cooperative (`should_stop` is polled between steps and
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import WhisperForConditionalGeneration, WhisperProcessor
from transformers.modeling_outputs import BaseModelOutput

from stt.finetune import modes
from stt.finetune.data import (
    Sample,
    SpeechCollator,
    batched_features,
    configure_tokenizer,
    is_multilingual,
    make_labels,
)
from stt.finetune.deploy_rule import with_words
from stt.finetune.loop import autocast, validation_loss
from stt.finetune.loop import train as train_loop
from stt.finetune.metrics import clip_errors, text_normalizer, wer_of
from stt.finetune.ordinary import watched as gate_watched
from stt.finetune.run_inputs import EncoderOut, forward_pass, prepare
from stt.finetune.timings import PhaseClock
from stt.models.decoding import max_new_tokens
from utils.config import TrainingConfig

__all__ = ["Sample", "Progress", "Cancelled", "EngineResult", "pick_device",
           "evaluate", "fine_tune"]

# A clip without speech is trained on this many times an epoch. Its target is a single token after
# the prefix, against a dozen for a spoken sentence, so under the token-mean loss it would weigh a
# fifth of a sentence; measured in docs/performance.md, "Clips without speech".
SILENT_REPEATS = 4
# Per-clip evaluation output: (errors, reference words) of each clip.
ClipErrors = list[tuple[int, int]]


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
    mode: str
    device: str
    epochs: int                           # the most the run could train (the config's)
    steps: int
    train_items: int
    train_loss: float | None              # mean training loss of the epoch whose weights were kept
    wer_before: float | None              # held-out set
    wer_after: float | None
    regression_wer_before: float | None
    regression_wer_after: float | None
    train_seconds: float
    rehearsal_items: int = 0              # earlier and built-in clips trained on beside the new ones
    ordinary_wer_before: float | None = None  # the built-in gate set (stt.finetune.ordinary)
    ordinary_wer_after: float | None = None
    trained_layers: int | None = None     # encoder layers trained (adapt), 0 (decoder), None (all)
    encoded_clips: int = 0                # clips whose frozen encoder states this run computed (not cached)
    no_speech_before: float | None = None  # share of held-out clips without speech on which it writes words
    no_speech_after: float | None = None
    epochs_run: int = 0                   # before the stop before memorisation ended it (stt.finetune.loop)
    best_epoch: int = 0                   # whose weights the saved model has
    blend: float = 1.0                    # share of that epoch's change from the starting model kept
    validation_losses: list[float] = field(default_factory=list)
    # {"heldout" | "regression" | "ordinary": {"before": [[errors, words], ...], "after": [...]}}, for the deploy rule.
    clip_errors: dict[str, dict[str, ClipErrors]] = field(default_factory=dict)
    # Wall seconds of each phase (stt.finetune.timings.PHASES): loading, encoding, measuring before, ...
    phase_seconds: dict[str, float] = field(default_factory=dict)
    # Each held-out clip: {"id", "reference", "before", "after"} (what the model wrote before and after training).
    heldout_clips: list[dict[str, Any]] = field(default_factory=list)


def pick_device() -> str:
    """"cuda" if a CUDA GPU is usable, else "cpu"."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def _transcribe(model: Any, processor: Any, samples: Sequence[Sample], device: str, batch_size: int,
                report: Callable[[Progress], None], encoded: EncoderOut | None) -> list[str]:
    """Greedy transcripts of `samples`; `encoded(start, end)` gives the encoder output of a slice
    when the caller has it (from cached states), else the encoder runs on the audio."""
    options: dict[str, Any] = {"language": "en", "task": "transcribe"} if is_multilingual(model) else {}
    texts: list[str] = []
    model.eval()
    for start in range(0, len(samples), batch_size):
        chunk = samples[start:start + batch_size]
        with torch.no_grad(), autocast(device):
            if encoded is None:
                features = batched_features(processor.feature_extractor, [s.audio for s in chunk], batch_size)
                inputs: dict[str, Any] = {"input_features": torch.stack(features).to(device)}
            else:
                inputs = {"encoder_outputs": BaseModelOutput(last_hidden_state=encoded(start, start + len(chunk)))}
            ids = model.generate(**inputs, num_beams=1, do_sample=False,
                                 max_new_tokens=max_new_tokens(max(len(s.audio) for s in chunk)), **options)
        texts.extend(processor.batch_decode(ids, skip_special_tokens=True))
        report(Progress("evaluating", len(texts), len(samples)))
    return texts


def score(model: Any, processor: Any, samples: Sequence[Sample], device: str, batch_size: int = 8,
          progress: Callable[[Progress], None] | None = None, encoded: EncoderOut | None = None) -> ClipErrors:
    """(errors, words) of each sample's greedy transcript against its text, after the normalizer in
    `stt.finetune.metrics.text_normalizer` (Whisper's English normalizer; see there)."""
    return score_with_texts(model, processor, samples, device, batch_size, progress, encoded)[0]


def score_with_texts(model: Any, processor: Any, samples: Sequence[Sample], device: str, batch_size: int = 8,
                     progress: Callable[[Progress], None] | None = None, encoded: EncoderOut | None = None
                     ) -> tuple[ClipErrors, list[str]]:
    """`score`, and the transcripts themselves: a run keeps its held-out ones for the user to read."""
    if not samples:
        raise ValueError("no samples to evaluate")
    hyps = _transcribe(model, processor, samples, device, batch_size, progress or (lambda p: None), encoded)
    return clip_errors([s.text for s in samples], hyps, text_normalizer(processor.tokenizer)), hyps


def evaluate(model: Any, processor: Any, samples: list[Sample], device: str, batch_size: int = 8,
             progress: Callable[[Progress], None] | None = None, encoded: EncoderOut | None = None) -> float:
    """Corpus WER of greedy transcripts against the samples' texts (see `score`).

    `encoded` (the encoder output of a slice of the samples) skips the encoder,
    which is exact whenever the encoder has not changed since it was computed.
    """
    return wer_of(score(model, processor, samples, device, batch_size, progress, encoded))


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def load_model(model_dir: Path, device: str) -> tuple[Any, Any]:
    """(processor, model) on `device`, with a sentence saying what to do when the folder is incomplete."""
    try:
        processor = WhisperProcessor.from_pretrained(str(model_dir))
        model = WhisperForConditionalGeneration.from_pretrained(str(model_dir), dtype=torch.float32).to(device)
    except Exception as exc:  # noqa: BLE001 - safetensors, OSError, ValueError...: all mean the same to the user
        raise RuntimeError(f"the model at {model_dir} cannot be loaded ({exc}); it may be incomplete: "
                           "copy it again, or roll back to a kept version") from exc
    configure_tokenizer(processor.tokenizer, is_multilingual(model))
    return processor, model


def fine_tune(model_dir: Path, out_dir: Path, train: list[Sample], heldout: list[Sample],
              regression: list[Sample], cfg: TrainingConfig,
              progress: Callable[[Progress], None] = lambda p: None,
              should_stop: Callable[[], bool] = lambda: False, *,
              rehearsal: Sequence[Sample] = (), ordinary: Sequence[Sample] = (), silent: Sequence[Sample] = (),
              cache_dir: Path | None = None) -> EngineResult:
    """Fine-tune the HF Whisper model in `model_dir` on `train` (plus `rehearsal`) and save it to `out_dir`.

    WER is measured on `heldout`, `regression` and `ordinary` (the built-in
    gate) before and after training (None for an empty list), and on `silent`
    (held-out clips without speech) the share on which it writes words; whether the
    result is good enough to deploy is the caller's decision. In the cached
    modes the frozen encoder states are kept under `cache_dir` (a temporary
    folder when None). `out_dir` is only written once training and evaluation
    completed; `Cancelled` is raised as soon as `should_stop()` is true at a
    step, batch or clip boundary.
    """
    if not train:
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
    with tempfile.TemporaryDirectory() as scratch:
        result = _run(model, processor, mode, device, Path(out_dir), train, list(rehearsal),
                      {"heldout": heldout, "regression": regression, "ordinary": list(ordinary),
                       "no_speech": list(silent)},
                      cfg, Path(cache_dir) if cache_dir else Path(scratch) / "states", Path(scratch), report,
                      progress, clock)
    result.phase_seconds = clock.rounded()
    return result


def _run(model: Any, processor: Any, mode: modes.Mode, device: str, out_dir: Path, train: list[Sample],
         rehearsal: list[Sample], measured: dict[str, list[Sample]], cfg: TrainingConfig, cache_dir: Path,
         scratch: Path, report: Callable[[Progress], None], progress: Callable[[Progress], None],
         clock: PhaseClock) -> EngineResult:
    """fine_tune's body, once the model is loaded: inputs, measure, train, measure, save."""
    learners = [*train, *rehearsal]
    with clock("encoding"):
        inputs = prepare(model, processor, mode, device, learners, measured, cfg, cache_dir, scratch,
                         lambda done, total: report(Progress("preparing", done, total)))
    max_labels = int(model.config.max_target_positions)

    def item(sample: Sample) -> dict[str, Any]:
        """What the loop trains or validates on: how to read its input, and its labels."""
        return {**inputs.item(sample, processor.feature_extractor),
                "labels": make_labels(processor.tokenizer, sample.text, max_labels)}

    train_items = [item(s) for s in learners for _ in range(1 if s.text else SILENT_REPEATS)]

    heard: dict[str, list[str]] = {}  # the held-out transcripts, "before" and "after"

    def measure(stage: str) -> dict[str, ClipErrors]:
        """Every measured set, reported as one count of clips so the progress runs once."""
        total, offset, out = sum(len(g) for g in measured.values()), 0, {}
        for name, group in measured.items():
            if group:
                def counted(p: Progress, base: int = offset) -> None:
                    report(Progress("evaluating", base + p.step, total, stage=stage))

                out[name], texts = score_with_texts(model, processor, group, device, cfg.batch_size, counted,
                                                    inputs.encoder_out(group, device, starting=stage == "before"))
                if name == "heldout":
                    heard[stage] = texts
                offset += len(group)
        return out

    with clock("measuring before"):
        before = measure("before")
    started = time.perf_counter()
    if inputs.split is not None:
        inputs.split.freeze()  # a cached mode: only the layers above the cached bottom train
        trained = model
    else:
        trained = mode.wrap(model, cfg)
    collator, forward = SpeechCollator(int(model.config.decoder_start_token_id)), forward_pass(trained, inputs.split)
    # The stop before memorisation watches every measured set, what the run never trains on (of the
    # built-in gate an even spread: see stt.finetune.ordinary.watched).
    watched = [[item(s) for s in (gate_watched(group) if name == "ordinary" else group)]
               for name, group in measured.items() if group]
    looped = train_loop(trained, train_items, device, cfg, collator, forward,
                        lambda phase, step, total, loss: report(Progress(phase, step, total, loss)),
                        (lambda on_batch: validation_loss(trained, forward, watched, collator, device,
                                                          cfg.batch_size, on_batch)) if watched else None, clock)
    train_seconds = time.perf_counter() - started
    model = mode.finish(trained)
    with clock("measuring after"):
        after = measure("after")
    report(Progress("saving", 0, 1))
    with clock("saving"):
        _save(model, processor, out_dir)
    progress(Progress("saving", 1, 1))

    def wer(scores: dict[str, ClipErrors], name: str) -> float | None:
        return wer_of(scores[name]) if name in scores else None

    return EngineResult(
        mode=mode.name, device=device, epochs=cfg.epochs, steps=looped.steps, train_items=len(train),
        train_loss=looped.train_loss, epochs_run=looped.epochs_run, best_epoch=looped.best_epoch,
        blend=looped.blend, validation_losses=looped.validation_losses,
        wer_before=wer(before, "heldout"), wer_after=wer(after, "heldout"),
        regression_wer_before=wer(before, "regression"), regression_wer_after=wer(after, "regression"),
        ordinary_wer_before=wer(before, "ordinary"), ordinary_wer_after=wer(after, "ordinary"),
        train_seconds=train_seconds, rehearsal_items=len(rehearsal),
        trained_layers=None if inputs.split is None else inputs.split.trained_layers, encoded_clips=inputs.encoded,
        no_speech_before=with_words(before["no_speech"]) if "no_speech" in before else None,
        no_speech_after=with_words(after["no_speech"]) if "no_speech" in after else None,
        clip_errors={name: {"before": before[name], "after": after[name]} for name in before},
        heldout_clips=[{"id": s.id, "reference": s.text, "before": b, "after": a}
                       for s, b, a in zip(measured["heldout"], heard.get("before", []), heard.get("after", []))])


def _save(model: Any, processor: Any, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))  # safetensors, config and generation_config.json
    processor.save_pretrained(str(out_dir))
    # transformers 5 nests the feature extractor in processor_config.json; faster-whisper and
    # the CTranslate2 export read the mel settings from preprocessor_config.json.
    processor.feature_extractor.save_pretrained(str(out_dir))
