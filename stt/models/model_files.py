"""The files a Whisper model folder is made of, and a check of its shapes: what a model import takes in.

A model folder brought in from elsewhere is copied into the version store, so
what it holds must be bounded: only regular files that a Hugging Face or
CTranslate2 Whisper folder uses, each under a size bound, and no links (a link
to /dev/zero wrote 13 GB in 25 s, and links to files outside the folder were
copied into the versions). Its config must also agree with its weights before
anything loads it: a config asking for 400 layers on tiny.en's weights loaded
as a 1.7-billion-parameter model of random layers.
"""
from __future__ import annotations

import json
import re
import shutil
from fnmatch import fnmatch
from pathlib import Path

from stt.models.model_format import ModelFormatError

# Every file a Whisper folder of either format uses (save_pretrained, the processor, the CTranslate2 converter).
WANTED = ("config.json", "generation_config.json", "preprocessor_config.json", "processor_config.json",
          "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.json",
          "merges.txt", "normalizer.json", "vocabulary.json", "vocabulary.txt", "model.bin", "model.safetensors",
          "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json",
          "model-*-of-*.safetensors", "pytorch_model-*-of-*.bin")
# Larger than any Whisper checkpoint's file (large-v3 in float32 is about 6 GB).
MAX_FILE_BYTES = 16 * 1024 ** 3
_LAYER = re.compile(r"(encoder|decoder)\.layers\.(\d+)\.")


def model_files(folder: Path) -> list[Path]:
    """The files of `folder` a Whisper model uses; raises ModelFormatError for a link or an oversized file."""
    chosen = [p for p in sorted(folder.iterdir()) if any(fnmatch(p.name, pattern) for pattern in WANTED)]
    links = [p.name for p in chosen if p.is_symlink()]
    if links:
        raise ModelFormatError(f"{folder} holds links ({', '.join(links)}): import a folder of the model's files "
                               "themselves, not links to them")
    for path in chosen:
        if not path.is_file():
            raise ModelFormatError(f"{path} is not a regular file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ModelFormatError(f"{path} holds {path.stat().st_size / 1024 ** 3:.0f} GB, more than any Whisper "
                                   "model's file")
    return chosen


def copy_model(folder: Path, dest: Path) -> None:
    """Copy only the model's own files (see model_files) into the new folder `dest`."""
    files = model_files(folder)
    dest.mkdir(parents=True)
    for path in files:
        shutil.copyfile(path, dest / path.name)


def check_shapes(folder: Path) -> None:
    """For a Hugging Face folder with safetensors weights: the config's layer counts and width must be
    those of the weights, read from the files' headers without loading them."""
    config_path = folder / "config.json"
    weights = sorted(folder.glob("model*.safetensors"))
    if not weights or not config_path.is_file():
        return
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if config.get("model_type") != "whisper":
        return  # CTranslate2's config.json holds no shapes: its converter reads them from the weights
    from safetensors import safe_open

    layers = {"encoder": 0, "decoder": 0}
    width = None
    for path in weights:
        try:
            with safe_open(str(path), framework="np") as f:
                for name in f.keys():
                    match = _LAYER.search(name)
                    if match:
                        layers[match[1]] = max(layers[match[1]], int(match[2]) + 1)
                    elif name.endswith("encoder.layer_norm.weight"):
                        width = f.get_slice(name).get_shape()[0]
        except Exception as exc:  # safetensors raises its own error type for a file that is not one of its
            raise ModelFormatError(f"{path} cannot be read as safetensors weights: {exc}") from None
    found = {"encoder_layers": layers["encoder"], "decoder_layers": layers["decoder"], "d_model": width}
    wrong = [f"{key} {config.get(key)} in config.json, {value} in the weights" for key, value in found.items()
             if value is not None and config.get(key) != value]
    if wrong:
        raise ModelFormatError(f"{folder}: the config does not match the weights ({'; '.join(wrong)}); "
                               "copy the config.json that was saved with these weights")
