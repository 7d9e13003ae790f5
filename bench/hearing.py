"""Measuring a model folder in a benchmark both ways: as the assistant hears with it (the default [assistant]
settings for the folder's format: faster-whisper's transcribe() defaults for a CTranslate2 folder), and as
runs measured before they did (transformers, greedy, after <|notimestamps|>: the "fast path")."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from stt.assistant import evaluation
from stt.assistant.profile import fast_path, resolve
from stt.models.conversion import as_huggingface, in_format_of
from stt.models.model_format import detect_format
from utils.config import AssistantConfig

# Sets judged by the share of clips on which the model writes anything, not by WER.
NO_SPEECH_PREFIX = "quiet"


def _figures(scores: dict[str, list[Any]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, got in scores.items():
        if name.startswith(NO_SPEECH_PREFIX):
            out[name] = evaluation.with_words(got)
        else:
            out[name] = evaluation.wer(got)
            if any(s.parts for s in got):  # a long recording: its broken segments and loops too
                out[f"{name} bad"] = sum(s.bad_segments for s in got) + sum(s.looped for s in got)
    return out


def heard(folder: Path, sets: dict[str, list], fast: bool = False) -> dict[str, float]:
    """WER (or, for sets named quiet..., the share with words) of the model in `folder` on each set, heard
    the assistant's way, or with `fast` the fast path's way."""
    if not fast:
        return _figures(evaluation.measure_folder(folder, resolve(AssistantConfig(), detect_format(folder)), sets))
    with tempfile.TemporaryDirectory() as tmp:
        return _figures(evaluation.measure_folder(as_huggingface(folder, Path(tmp) / "hf"), fast_path(), sets))


def wers_both_ways(folder: Path, sets: dict[str, list], like: Path | None = None) -> dict[str, float]:
    """`heard` both ways: "<set>" as the assistant hears it, "<set> fast" on the fast path. With `like`, the
    model is first brought into that deployed folder's format (a recipe's Hugging Face output exported to
    CTranslate2 with the same quantization, as a run deploys it)."""
    with tempfile.TemporaryDirectory() as tmp:
        measured = in_format_of(like, folder, Path(tmp) / "export") if like is not None else folder
        return {**heard(measured, sets), **{f"{k} fast": v for k, v in heard(measured, sets, fast=True).items()}}
