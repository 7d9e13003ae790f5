"""The training modes, each in one record: what trains, whether its frozen encoder part is cached, how
the model is wrapped for training and what is saved after it.

  adapt    The default on a CPU. The bottom encoder layers are frozen and
           their output is computed once per clip and kept on disk
           (stt.finetune.encoder_states); the top encoder layers (half of a small
           encoder, a quarter of a larger one) and the decoder train on it.
           Training the top of the encoder is what adapts the model to the
           user's voice and microphone, which helps everything they say, at a
           fraction of a full fine-tune's cost. The trained layers compute only
           each clip's own states with gradients; the window's padding after
           them stays as the starting weights left it (stt.finetune.frozen_tail).
  decoder  The whole encoder frozen and cached: the cheapest, but it only
           learns which words to write, never how the user sounds.
  full     Every weight trains; on CUDA under autocast (bf16, or fp16 with a
           gradient scaler where bf16 is missing). The default on a GPU.
  lora     peft LoRA adapters on the attention projections, merged back before
           saving so the saved model is a plain Whisper any loader reads.

"auto" (the config's default) is not a mode of its own: `resolve` picks adapt on a CPU and full on a GPU.
utils/config.TRAINING_MODES lists the names the config accepts; a test holds it to NAMES.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stt.finetune.encoder_states import default_trained_layers
from utils.config import TrainingConfig

AUTO = "auto"
# LoRA on the query and value projections of every attention block (encoder and decoder),
# with alpha = 2 * r: the usual recipe for Whisper (and the LoRA paper's choice of matrices).
_LORA_TARGETS = ["q_proj", "v_proj"]


def _as_is(model: Any, cfg: TrainingConfig) -> Any:
    return model


def _with_lora(model: Any, cfg: TrainingConfig) -> Any:
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=cfg.lora_r, lora_alpha=2 * cfg.lora_r, lora_dropout=0.05, target_modules=_LORA_TARGETS,
                      bias="none")
    with warnings.catch_warnings():
        # peft reads transformers' deprecated `is_gradient_checkpointing`: a FutureWarning in every
        # LoRA run's log that names nothing the user or this code can change.
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(model, lora)


def _itself(trained: Any) -> Any:
    return trained


def _merged(trained: Any) -> Any:
    return trained.merge_and_unload()  # a plain Whisper again, which any loader reads


@dataclass(frozen=True)
class Mode:
    name: str
    # The bottom of the encoder is frozen, computed once per clip and kept in the state cache.
    cached: bool
    # Encoder layers trained, given the encoder's layer count and training.adapt_layers (cached modes only).
    trained_layers: Callable[[int, int], int] = lambda layers, configured: 0
    # The module to train, made from the loaded model (cached modes freeze through their EncoderSplit instead).
    wrap: Callable[[Any, TrainingConfig], Any] = _as_is
    # The model to save, made from the trained module.
    finish: Callable[[Any], Any] = _itself


MODES = {mode.name: mode for mode in (
    Mode("adapt", cached=True, trained_layers=lambda layers, configured: configured or default_trained_layers(layers)),
    Mode("decoder", cached=True),
    Mode("full", cached=False),
    Mode("lora", cached=False, wrap=_with_lora, finish=_merged),
)}
NAMES = tuple(MODES)


def resolve(name: str, device: str) -> Mode:
    """The concrete mode for the config's `name`: "auto" adapts the top of the encoder and the decoder on a
    CPU, where a full fine-tune's encoder cost makes it slow, and trains everything on a GPU."""
    if name == AUTO:
        name = "full" if device == "cuda" else "adapt"
    if name not in MODES:
        raise ValueError(f"unknown training mode {name!r} (expected {AUTO}, {', '.join(NAMES)})")
    return MODES[name]
