"""Tell which kind of Whisper model folder the config points at.

The training server fine-tunes Hugging Face Whisper checkpoints, but the user's
speech assistant usually runs faster-whisper, whose models are CTranslate2
folders. Both can sit at the configured model path, so everything that loads a
model first asks `detect_format` and then imports, trains or exports accordingly.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HUGGINGFACE = "huggingface"
CTRANSLATE2 = "ctranslate2"
# Multilingual Whisper vocabularies hold 51865 tokens or more (large-v3: 51866);
# the English-only ones 51864. openai-whisper and HF's converter use the same rule.
MULTILINGUAL_MIN_VOCAB = 51865


def is_multilingual(model: Any) -> bool:
    """Whether a loaded Hugging Face Whisper model knows languages beyond English (its labels then name one)."""
    return int(model.config.vocab_size) >= MULTILINGUAL_MIN_VOCAB

# Single-file and sharded weight layouts written by `save_pretrained`.
_HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_HF_INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
_HF_SHARD_PATTERNS = ("model-*-of-*.safetensors", "pytorch_model-*-of-*.bin")

_EXPECTED = (
    "expected either a Hugging Face Whisper folder (config.json with model_type \"whisper\" "
    "and model.safetensors or pytorch_model.bin, sharded or not) or a CTranslate2 / faster-whisper "
    "folder (model.bin and config.json)"
)
# Listing a huge folder in an error message helps nobody; the first entries say enough.
_MAX_LISTED = 12


class ModelFormatError(ValueError):
    """The model folder is missing, unrecognised or unusable; the message says what to do."""


def _listing(path: Path) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())
    if not names:
        return "the folder is empty"
    shown = ", ".join(names[:_MAX_LISTED])
    more = f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else ""
    return f"found {shown}{more}"


def _has_hf_weights(path: Path) -> bool:
    if any((path / name).is_file() for name in _HF_WEIGHT_FILES + _HF_INDEX_FILES):
        return True
    return any(any(path.glob(pattern)) for pattern in _HF_SHARD_PATTERNS)


def _read_config(config_path: Path) -> dict:
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{config_path} cannot be read as JSON: {exc}") from None
    if not isinstance(config, dict):
        raise ModelFormatError(f"{config_path} does not hold a JSON object")
    return config


def detect_format(path: Path) -> str:
    """Return "huggingface" or "ctranslate2" for the model folder at `path`.

    Raises ModelFormatError naming what the folder holds and what was expected,
    so a misconfigured model path is explained instead of failing deep inside
    transformers or ctranslate2.
    """
    path = Path(path)
    if not path.exists():
        raise ModelFormatError(f"model folder {path} does not exist; {_EXPECTED}")
    if not path.is_dir():
        raise ModelFormatError(f"model path {path} is a file, not a folder; {_EXPECTED}")

    config_path = path / "config.json"
    if not config_path.is_file():
        raise ModelFormatError(f"{path} has no config.json ({_listing(path)}); {_EXPECTED}")
    config = _read_config(config_path)

    # Only Hugging Face configs carry model_type; CTranslate2's config.json holds
    # decoding settings (suppress_ids, lang_ids, ...) and no model_type at all.
    model_type = config.get("model_type")
    if model_type is not None:
        if model_type != "whisper":
            raise ModelFormatError(
                f"{path} is a Hugging Face {model_type!r} model, not Whisper; {_EXPECTED}")
        if not _has_hf_weights(path):
            raise ModelFormatError(
                f"{path} has a Whisper config.json but no weights ({_listing(path)}); {_EXPECTED}")
        return HUGGINGFACE

    if (path / "model.bin").is_file():
        return CTRANSLATE2
    raise ModelFormatError(f"{path} is not a recognised model folder ({_listing(path)}); {_EXPECTED}")
