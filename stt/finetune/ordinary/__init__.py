"""Built-in ordinary English speech: what keeps a Train click from making the model worse at everything else.

124 everyday sentences (sentences.txt), rendered once with espeak-ng by
scripts/make_ordinary_speech.py into Vorbis files listed in index.tsv. Two
splits, with different sentences and different voices:

- "rehearsal": mixed into every run's training batches, so the decoder keeps
  writing ordinary English while it learns the user's names;
- "gate": never trained on; its WER before and after training is a deploy
  check while the user has few regression checks of their own. Its first
  sentences joined into one recording of over a minute (`long_form`) check that the
  assistant still follows long audio: Whisper seeks through it window by window
  by its own timestamps.

The voices are synthetic. The gate therefore measures whether the model
still writes ordinary English, not how well it hears the user: a model that
adapted to a real voice can look slightly worse on it. The user's own
regression checks (or `[training].regression_dir`) replace it; see the README.
"""
from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from stt.finetune.data import SAMPLE_RATE, Sample
from utils.audio import load_for_whisper
from utils.config import AudioConfig

FOLDER = Path(__file__).resolve().parent
INDEX = FOLDER / "index.tsv"
SPLITS = ("rehearsal", "gate")
# Negative ids apart from the regression folder's (-1, -2, ...), so no Sample id is shared.
_FIRST_ID = -1_000_000
# With this many regression clips of the user's own, the built-in set is no longer a deploy check.
GATE_UNTIL = 20
# Rehearsed clips per run: as many as the run's new items, at least this many.
REHEARSAL_MIN = 16
# Gate clips whose loss a run checks after each epoch and in the blend (stt.finetune.loop).
WATCHED = 8
# The long recording: gate sentences joined, with a pause between them, until it lasts this long.
LONG_FORM_S, PAUSE_S = 75.0, 0.6
_LONG_FORM_ID = 2 * _FIRST_ID


def read_sentences() -> list[str]:
    lines = (FOLDER / "sentences.txt").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def load(split: str) -> list[Sample]:
    """The clips of one split, decoded to 16 kHz; raises FileNotFoundError naming the missing file."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} (expected one of {', '.join(SPLITS)})")
    with INDEX.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [Sample(_FIRST_ID - i, row["text"], load_for_whisper((FOLDER / row["file"]).read_bytes(), AudioConfig()))
            for i, row in enumerate(rows) if row["split"] == split]


def for_run(new_items: int, regression_clips: int) -> tuple[list[Sample], list[Sample]]:
    """(rehearsal, gate) clips for a run of `new_items` new items.

    Rehearsal: as many clips as new items, between REHEARSAL_MIN and all of
    them, so a small run is anchored as well as a large one (measured in
    docs/performance.md). The gate only while
    the user has fewer than GATE_UNTIL regression clips of their own, which
    measure their real voice and are the better judge.
    """
    rehearsal = load("rehearsal")[:max(REHEARSAL_MIN, new_items)]
    return rehearsal, load("gate") if regression_clips < GATE_UNTIL else []


def watched(gate: Sequence[Sample]) -> list[Sample]:
    """An even spread of WATCHED gate clips, for the loss the run checks after each epoch.

    The loss over a few sentences' tokens is already a steady signal for when to stop
    and how much of the change to keep, while every gate clip still counts in the
    deploy check's WER; checking all 31 after each epoch cost a fifth of a click
    (docs/performance.md, "A Train click against the recipe").
    """
    return list(gate[::max(1, math.ceil(len(gate) / WATCHED))])


def long_form(gate: Sequence[Sample]) -> Sample:
    """One recording of over a minute: gate sentences one after another with a pause between them, as
    long audio reaches the assistant (a dictation, a meeting). Its sentences are its `parts`."""
    pause = np.zeros(int(PAUSE_S * SAMPLE_RATE), dtype=np.float32)
    pieces, parts, seconds = [], [], 0.0
    for clip in gate:
        pieces += [clip.audio, pause]
        parts.append(clip.text)
        seconds += len(clip.audio) / SAMPLE_RATE + PAUSE_S
        if seconds >= LONG_FORM_S:
            break
    return Sample(_LONG_FORM_ID, " ".join(parts), np.concatenate(pieces[:-1]), parts=tuple(parts))
