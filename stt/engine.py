"""The training engine: fine-tune a Hugging Face Whisper model on reviewed clips and measure WER.

Pure functions with no knowledge of the database, jobs or deployment: the job
runner hands in samples and a config, gets numbers back, and decides what to
deploy. Cancellation is cooperative (`should_stop` is polled between steps and
batches) because a training thread cannot be killed safely.

Modes (see `resolve_mode`):
  decoder  The encoder is frozen. Every clip's encoder output is computed once
           per run and reused in every epoch and for the before/after evaluation,
           so an epoch costs only the decoder: on a CPU the encoder's 30 s
           window is most of Whisper's compute. It also adapts the part that
           matters here (which words to write for sounds the encoder already
           represents) while the acoustic model stays as pre-trained, which
           limits forgetting.
  full     Every weight trains; on CUDA under autocast (bf16, or fp16 with a
           gradient scaler where bf16 is missing).
  lora     peft LoRA adapters on the attention projections, merged back before
           saving so the saved model is a plain Whisper any loader reads.
"""
from __future__ import annotations

import math
import os
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from transformers import WhisperForConditionalGeneration, WhisperProcessor, get_linear_schedule_with_warmup
from transformers.modeling_outputs import BaseModelOutput

from stt.data import Sample, SpeechCollator, batched_features, configure_tokenizer, is_multilingual, make_labels
from stt.metrics import corpus_wer, text_normalizer
from stt.transcriber import max_new_tokens
from utils.config import TrainingConfig

__all__ = ["Sample", "Progress", "Cancelled", "EngineResult", "resolve_mode", "pick_device",
           "evaluate", "fine_tune"]

# LoRA on the query and value projections of every attention block (encoder and decoder),
# with alpha = 2 * r: the usual recipe for Whisper (and the LoRA paper's choice of matrices).
_LORA_TARGETS = ["q_proj", "v_proj"]


@dataclass
class Progress:
    phase: str         # "preparing" | "training" | "evaluating" | "saving"
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
    epochs: int
    steps: int
    train_items: int
    train_loss: float | None              # mean loss of the last epoch
    wer_before: float | None              # held-out set
    wer_after: float | None
    regression_wer_before: float | None
    regression_wer_after: float | None
    train_seconds: float


def pick_device() -> str:
    """"cuda" if a CUDA GPU is usable, else "cpu"."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_mode(mode: str, device: str) -> str:
    """The concrete mode for the config's `mode`: "auto" trains only the decoder on a CPU,
    where the encoder's cost makes a full fine-tune slow, and everything on a GPU."""
    if mode == "auto":
        return "full" if device == "cuda" else "decoder"
    if mode not in ("decoder", "full", "lora"):
        raise ValueError(f"unknown training mode {mode!r} (expected auto, decoder, full or lora)")
    return mode


def _encode(model: Any, features: Sequence[torch.Tensor], device: str, batch_size: int,
            on_batch: Callable[[int], None] = lambda done: None) -> list[torch.Tensor]:
    """Encoder states of each clip, computed in batches without gradients (kept on `device`)."""
    encoder = model.get_encoder()
    out: list[torch.Tensor] = []
    with torch.no_grad():  # not inference_mode: these tensors later feed layers that need grad
        for start in range(0, len(features), batch_size):
            batch = torch.stack(list(features[start:start + batch_size])).to(device)
            out.extend(encoder(batch).last_hidden_state)
            on_batch(len(out))
    return out


def _transcribe(model: Any, processor: Any, samples: Sequence[Sample], device: str, batch_size: int,
                report: Callable[[Progress], None], encoded: Sequence[torch.Tensor] | None) -> list[str]:
    """Greedy transcripts of `samples`, from precomputed encoder states when given."""
    options: dict[str, Any] = {"language": "en", "task": "transcribe"} if is_multilingual(model) else {}
    texts: list[str] = []
    model.eval()
    for start in range(0, len(samples), batch_size):
        chunk = samples[start:start + batch_size]
        if encoded is None:
            features = batched_features(processor.feature_extractor, [s.audio for s in chunk], batch_size)
            inputs: dict[str, Any] = {"input_features": torch.stack(features).to(device)}
        else:
            inputs = {"encoder_outputs": BaseModelOutput(
                last_hidden_state=torch.stack(list(encoded[start:start + batch_size])))}
        with torch.no_grad(), _autocast(device):
            ids = model.generate(**inputs, num_beams=1, do_sample=False,
                                 max_new_tokens=max_new_tokens(max(len(s.audio) for s in chunk)), **options)
        texts.extend(processor.batch_decode(ids, skip_special_tokens=True))
        report(Progress("evaluating", len(texts), len(samples)))
    return texts


def evaluate(model: Any, processor: Any, samples: list[Sample], device: str, batch_size: int = 8,
             progress: Callable[[Progress], None] | None = None,
             encoded: Sequence[torch.Tensor] | None = None) -> float:
    """Corpus WER of greedy transcripts against the samples' texts, after the normalizer
    in `stt.metrics.text_normalizer` (Whisper's English normalizer; see there).

    `encoded` (the samples' encoder states, in order) skips the encoder, which is
    exact whenever the encoder has not changed since they were computed.
    """
    if not samples:
        raise ValueError("no samples to evaluate")
    hyps = _transcribe(model, processor, samples, device, batch_size, progress or (lambda p: None), encoded)
    return corpus_wer([s.text for s in samples], hyps, text_normalizer(processor.tokenizer))


def _autocast(device: str) -> Any:
    """Mixed precision on CUDA (bf16 where supported: no loss scaling needed); plain fp32 on CPU,
    where autocast brings little speed and costs accuracy."""
    if device != "cuda":
        return nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def _param_groups(model: Any, weight_decay: float) -> list[dict[str, Any]]:
    """Trainable parameters, with no weight decay on biases and layer norms (HF Trainer's rule):
    decaying those only pulls the activations' scale and offset towards zero."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if name.endswith("bias") or "layer_norm" in name else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _prepare_model(model: Any, mode: str, cfg: TrainingConfig) -> Any:
    """Freeze or wrap the model for `mode`; returns the module to train."""
    if mode == "decoder":
        model.get_encoder().requires_grad_(False)
        return model
    if mode == "lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(r=cfg.lora_r, lora_alpha=2 * cfg.lora_r, lora_dropout=0.05,
                          target_modules=_LORA_TARGETS, bias="none")
        return get_peft_model(model, lora)
    return model


def _train(model: Any, train_items: list[dict[str, Any]], mode: str, device: str, cfg: TrainingConfig,
           collator: SpeechCollator, report: Callable[[Progress], None]) -> tuple[int, float | None]:
    """The optimisation loop; returns (optimizer steps, mean loss of the last epoch)."""
    batches_per_epoch = math.ceil(len(train_items) / cfg.batch_size)
    total = batches_per_epoch * cfg.epochs
    optimizer = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.learning_rate)
    scheduler = get_linear_schedule_with_warmup(optimizer, math.ceil(cfg.warmup_ratio * total), total)
    # fp16 autocast (a GPU without bf16) needs loss scaling; disabled, the scaler is a no-op.
    scaler = torch.amp.GradScaler("cuda", enabled=device == "cuda" and not torch.cuda.is_bf16_supported())
    # A generator of its own, so the shuffle order depends on the seed alone.
    order = torch.Generator().manual_seed(cfg.seed)
    trainable = [p for p in model.parameters() if p.requires_grad]
    step, epoch_loss = 0, None
    model.train()
    for _epoch in range(cfg.epochs):
        losses = []
        permutation = torch.randperm(len(train_items), generator=order).tolist()
        for batch_start in range(0, len(train_items), cfg.batch_size):
            batch = collator([train_items[i] for i in permutation[batch_start:batch_start + cfg.batch_size]])
            inputs, labels = batch["inputs"].to(device), batch["labels"].to(device)
            with _autocast(device):
                if mode == "decoder":
                    out = model(encoder_outputs=(inputs,), labels=labels)
                else:
                    out = model(input_features=inputs, labels=labels)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(out.loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(trainable, cfg.max_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            step += 1
            losses.append(float(out.loss.detach()))
            report(Progress("training", step, total, losses[-1]))
        epoch_loss = sum(losses) / len(losses)
    model.eval()
    return step, epoch_loss


def fine_tune(model_dir: Path, out_dir: Path, train: list[Sample], heldout: list[Sample],
              regression: list[Sample], cfg: TrainingConfig,
              progress: Callable[[Progress], None] = lambda p: None,
              should_stop: Callable[[], bool] = lambda: False) -> EngineResult:
    """Fine-tune the HF Whisper model in `model_dir` on `train` and save it to `out_dir`.

    WER is measured on `heldout` and `regression` before and after training
    (None for an empty list); whether the result is good enough to deploy is
    the caller's decision. `out_dir` is only written once training and
    evaluation completed; `Cancelled` is raised as soon as `should_stop()` is
    true at a step, batch or clip boundary.
    """
    if not train:
        raise ValueError("no samples to train on")
    device = pick_device()
    mode = resolve_mode(cfg.mode, device)
    # Every core: PyTorch's default can be fewer than the machine has (e.g. under a job
    # runner's thread); training is the only heavy work running while a job does.
    torch.set_num_threads(cfg.num_threads or os.cpu_count() or 1)
    _seed(cfg.seed)

    def report(p: Progress) -> None:
        progress(p)
        if should_stop():
            raise Cancelled(f"training stopped during {p.phase}")

    report(Progress("preparing", 0, 1))
    try:
        processor = WhisperProcessor.from_pretrained(str(model_dir))
        model = WhisperForConditionalGeneration.from_pretrained(str(model_dir), dtype=torch.float32).to(device)
    except Exception as exc:  # noqa: BLE001 - safetensors, OSError, ValueError...: all mean the same to the user
        raise RuntimeError(f"the model at {model_dir} cannot be loaded ({exc}); it may be incomplete: "
                           "copy it again, or roll back to a kept version") from exc
    configure_tokenizer(processor.tokenizer, is_multilingual(model))

    # Features (and in decoder mode, encoder states) for every clip, computed once. The states
    # take 1500 x d_model floats a clip (2.3 MB for tiny, 4.6 MB for distil-small.en), so a
    # thousand clips fit in a few GB; they stay float32 so training matches the model exactly.
    clips = [*train, *heldout, *regression]
    batch = cfg.batch_size
    passes = 2 if mode == "decoder" else 1
    features = batched_features(processor.feature_extractor, [s.audio for s in clips], batch,
                                lambda done: report(Progress("preparing", done, passes * len(clips))))
    if mode == "decoder":
        inputs = _encode(model, features, device, batch,
                         lambda done: report(Progress("preparing", len(clips) + done, passes * len(clips))))
        del features
    else:
        inputs = features
    max_labels = int(model.config.max_target_positions)
    train_items = [{"inputs": inputs[i], "labels": make_labels(processor.tokenizer, s.text, max_labels)}
                   for i, s in enumerate(train)]
    # Held-out and regression states, reusable for both evaluations while the encoder is frozen.
    heldout_states = inputs[len(train):len(train) + len(heldout)] if mode == "decoder" else None
    regression_states = inputs[len(train) + len(heldout):] if mode == "decoder" else None

    def measure(stage: str) -> tuple[float | None, float | None]:
        """Held-out then regression WER, reported as one count of clips so the progress runs once."""
        total = len(heldout) + len(regression)

        def counted(offset: int) -> Callable[[Progress], None]:
            return lambda p: report(Progress("evaluating", offset + p.step, total, stage=stage))

        return (evaluate(model, processor, heldout, device, batch, counted(0), heldout_states) if heldout else None,
                evaluate(model, processor, regression, device, batch, counted(len(heldout)), regression_states)
                if regression else None)

    wer_before, regression_before = measure("before")

    started = time.perf_counter()
    trained = _prepare_model(model, mode, cfg)
    collator = SpeechCollator(int(model.config.decoder_start_token_id))
    steps, train_loss = _train(trained, train_items, mode, device, cfg, collator, report)
    train_seconds = time.perf_counter() - started
    if mode == "lora":
        model = trained.merge_and_unload()

    wer_after, regression_after = measure("after")

    report(Progress("saving", 0, 1))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))  # safetensors, config and generation_config.json
    processor.save_pretrained(str(out_dir))
    # transformers 5 nests the feature extractor in processor_config.json; faster-whisper and
    # the CTranslate2 export read the mel settings from preprocessor_config.json.
    processor.feature_extractor.save_pretrained(str(out_dir))
    progress(Progress("saving", 1, 1))
    return EngineResult(mode=mode, device=device, epochs=cfg.epochs, steps=steps, train_items=len(train),
                        train_loss=train_loss, wer_before=wer_before, wer_after=wer_after,
                        regression_wer_before=regression_before, regression_wer_after=regression_after,
                        train_seconds=train_seconds)
