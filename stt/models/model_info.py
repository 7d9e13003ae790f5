"""What a model folder holds: format, precision, size and parameter count, read from headers only.

`main.py model info` answers "which model is the assistant running, and how
big is it?" without loading gigabytes of weights: safetensors and model.bin
both describe every tensor's shape in a header.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from stt.models import store
from stt.models.ct2_binary import count_layers, read_header
from stt.models.ct2_export import ct2_quantization
from stt.models.model_format import CTRANSLATE2, MULTILINGUAL_MIN_VOCAB, ModelFormatError, detect_format
from utils import disk

# safetensors' short dtype names, spelled as CTranslate2 and torch spell them.
_DTYPES = {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}


def _hf_summary(path: Path) -> tuple[int | None, str]:
    """(parameters, dtype) of a Hugging Face folder; parameters None for pickled .bin weights,
    which cannot be read without running the pickle."""
    from safetensors import safe_open

    files = sorted(path.glob("*.safetensors"))
    if not files:
        return None, "unknown (pytorch_model.bin)"
    count, dtypes = 0, set()
    for file in files:
        with safe_open(str(file), framework="numpy") as weights:
            for name in weights.keys():
                tensor = weights.get_slice(name)
                count += math.prod(tensor.get_shape())
                dtype = str(tensor.get_dtype()).lower()
                dtypes.add(_DTYPES.get(dtype, dtype))
    return count, "/".join(sorted(dtypes))


def _ct2_summary(path: Path) -> tuple[int, str]:
    """(parameters, quantization) of a CTranslate2 folder; aliases and quantization scales not counted."""
    header = read_header(path / "model.bin")
    stored = {v.name: v for v in header.variables.values() if not v.name.endswith("_scale")}
    return sum(math.prod(v.shape) for v in stored.values() if v.shape), ct2_quantization(path)


def _architecture(path: Path, fmt: str) -> dict[str, Any]:
    """Layer counts, width and vocabulary from the Hugging Face config; CTranslate2 configs hold only decoding
    settings, so there they come from the weights' shapes."""
    if fmt == CTRANSLATE2:
        header = read_header(path / "model.bin")
        rows, width = header.variables["decoder/embeddings/weight"].shape
        return {"encoder_layers": count_layers(header, "encoder"), "decoder_layers": count_layers(header, "decoder"),
                "d_model": int(width), "vocab_size": int(rows)}
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    return {key: config.get(key) for key in ("encoder_layers", "decoder_layers", "d_model", "vocab_size")}


# Whisper's published sizes by (encoder layers, width), and the decoders that distil-whisper and turbo cut.
_SIZES = {(4, 384): "tiny", (6, 512): "base", (12, 768): "small", (24, 1024): "medium", (32, 1280): "large"}
_ENGLISH_ONLY, _V3 = 51864, 51866  # vocabulary sizes: multilingual v1/v2 models have 51865


def whisper_name(arch: dict[str, Any]) -> str:
    """The published model these shapes belong to ("Whisper tiny.en", "distil-small.en"), read from the
    architecture, because neither a CTranslate2 folder nor a fine-tuned one records a name; fine-tuning
    keeps the shapes, so the name stays true."""
    size = _SIZES.get((arch.get("encoder_layers"), arch.get("d_model")))
    if size is None:
        return (f"Whisper ({arch.get('encoder_layers')} encoder / {arch.get('decoder_layers')} decoder layers, "
                f"width {arch.get('d_model')})")
    full = arch.get("decoder_layers") == arch.get("encoder_layers")
    vocab = arch.get("vocab_size")
    suffix = ".en" if vocab == _ENGLISH_ONLY else ""
    if size == "large":
        suffix = "-v3" if vocab == _V3 else "-v2"
        if arch.get("decoder_layers") == 4:
            return "Whisper large-v3-turbo"
    return f"Whisper {size}{suffix}" if full else f"distil-whisper distil-{size}{suffix}"


def english_only(path: Path) -> bool | None:
    """Whether the model at `path` has Whisper's English-only vocabulary; None when there is no readable model."""
    try:
        return int(_architecture(path, detect_format(path))["vocab_size"]) < MULTILINGUAL_MIN_VOCAB
    except (ModelFormatError, OSError, ValueError, KeyError, TypeError):
        return None


def name_of(path: Path) -> str | None:
    """whisper_name() of the model at `path`, or None when there is no readable model there."""
    try:
        return whisper_name(_architecture(path, detect_format(path)))
    except (ModelFormatError, OSError, ValueError, KeyError):
        return None


def describe(path: Path) -> dict[str, Any]:
    """Everything `model info` prints; raises ModelFormatError when there is no usable model."""
    fmt = detect_format(path)
    parameters, precision = _ct2_summary(path) if fmt == CTRANSLATE2 else _hf_summary(path)
    arch = _architecture(path, fmt)
    return {"path": str(path), "name": whisper_name(arch), "format": fmt, "precision": precision,
            "parameters": parameters, "size_bytes": disk.folder_size(path), **arch,
            "version": store.deployed_version(path) or store.ORIGINAL, "versions": store.list_versions(path)}
