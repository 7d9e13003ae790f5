"""A model folder in the other format: what training loads, and what the assistant loads back.

Kept apart from model_format.py (which only tells the formats apart and imports
nothing of the project), so that the converters may use its detection without
an import circle. The converters are imported when called: they need torch,
and most callers (the web app's views) never convert anything.
"""
from __future__ import annotations

from pathlib import Path

from stt.models.model_format import CTRANSLATE2, detect_format
from utils import disk


def as_huggingface(path: Path, scratch: Path) -> Path:
    """The model at `path` as a Hugging Face folder to load or train: itself, or its lossless
    import into `scratch` when it is a CTranslate2 (faster-whisper) folder."""
    if detect_format(path) != CTRANSLATE2:
        return path
    from stt.models.ct2_import import ct2_to_hf  # needs torch: imported when a conversion is due

    ct2_to_hf(path, scratch)
    return scratch


def working_copy_bytes(path: Path) -> int:
    """What `as_huggingface` writes for the model at `path`: nothing for a Hugging Face folder (read where it
    is); for a CTranslate2 folder its weights in float32, twice the float16 folder that is the usual kind."""
    return 2 * disk.folder_size(path) if detect_format(path) == CTRANSLATE2 else 0


def in_format_of(deployed: Path, trained: Path, scratch: Path) -> Path:
    """A trained Hugging Face folder in the deployed model's format: exported to CTranslate2 with
    the deployed model's own quantization into `scratch` where needed, so the assistant loads it unchanged."""
    if detect_format(deployed) != CTRANSLATE2:
        return trained
    from stt.models.ct2_export import ct2_quantization, export_ct2

    export_ct2(trained, scratch, ct2_quantization(deployed))
    return scratch
