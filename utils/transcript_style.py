"""How the transcripts about to be trained on are written, since the model learns to write the same way.

Whisper writes capitals, punctuation and digits ("Set a timer for 8:30."). A reviewer who types fast
writes "set a timer for eight thirty", and after a run the assistant writes that way too: nothing
about its hearing changed, only its style. So before Train the dashboard says when most of the
transcripts to train on lack capitals or punctuation or write numbers as words
(GET /api/data/style). The run's own WER does not see it (its normalizer ignores case and
punctuation and reads "thirty" as 30), so only this note does.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

# The note speaks when at least this share of at least MIN_TEXTS transcripts is written one way, or when
# NUMBER_TEXTS of them write numbers as words and none has a digit.
MOST, MIN_TEXTS, NUMBER_TEXTS = 0.8, 5, 3
_PUNCTUATION = re.compile(r"[.,?!;:]")
# Numbers a reviewer spells out where Whisper writes digits ("one" is left out: "the one on the left").
_NUMBER_WORDS = re.compile(r"\b(two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
                           r"fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|"
                           r"eighty|ninety|hundred|thousand|percent)\b", re.IGNORECASE)


def summary(texts: Sequence[str]) -> dict[str, Any]:
    """Counts of the transcripts written without capitals, without punctuation, or with numbers as words and no
    digit anywhere; `note` says in a sentence what the model will learn from them, or is None."""
    worded = [t for t in texts if any(c.isalpha() for c in t)]
    no_capitals = sum(1 for t in worded if not any(c.isupper() for c in t))
    no_punctuation = sum(1 for t in worded if not _PUNCTUATION.search(t))
    in_words = sum(1 for t in worded if _NUMBER_WORDS.search(t))
    digits = sum(1 for t in worded if any(c.isdigit() for c in t))
    habits = []
    if len(worded) >= MIN_TEXTS:
        if no_capitals >= MOST * len(worded):
            habits.append("without capitals")
        if no_punctuation >= MOST * len(worded):
            habits.append("without punctuation")
        if in_words >= NUMBER_TEXTS and digits == 0:
            habits.append('with numbers as words ("eight thirty", not "8:30")')
    note = (f"Most of the {len(worded)} transcripts to train on are written {' and '.join(habits)}: the model "
            "will learn to write that way, and the assistant with it. Write them as it should write, before "
            "training, if that is not what you want.") if habits else None
    return {"transcripts": len(worded), "without_capitals": no_capitals, "without_punctuation": no_punctuation,
            "numbers_in_words": in_words, "with_digits": digits, "note": note}
