"""Built-in ordinary English speech: what keeps a Train click from making the model worse at everything else.

124 everyday sentences (sentences.txt), rendered once with espeak-ng by
scripts/make_ordinary_speech.py into Vorbis files listed in index.tsv. Two
splits, with different sentences and different voices:

- "rehearsal": mixed into every run's training batches, so the decoder keeps
  writing ordinary English while it learns the user's names;
- "gate": never trained on; its WER before and after training is a deploy
  check while the user has few regression checks of their own.

The voices are synthetic. The gate therefore measures whether the model
still writes ordinary English, not how well it hears the user: a model that
adapted to a real voice can look slightly worse on it. The user's own
regression checks (or `[training].regression_dir`) replace it; see the README.
"""
from __future__ import annotations

import csv
from pathlib import Path

from stt.data import Sample
from utils.audio import load_for_whisper
from utils.config import AudioConfig

FOLDER = Path(__file__).resolve().parent
INDEX = FOLDER / "index.tsv"
SPLITS = ("rehearsal", "gate")
# Negative ids apart from the regression folder's (-1, -2, ...), so no Sample id is shared.
_FIRST_ID = -1_000_000


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
