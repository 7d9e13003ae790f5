"""Word errors after Whisper's own normalizer: the one count of "how wrong" that a run's measuring, a model
import, `main.py evaluate` and the editor's suggestions (how far the model is from a stored transcript) share.

Light on purpose (no torch): the web process scores suggestions with it.
"""
from __future__ import annotations

import functools
from collections.abc import Callable

import jiwer

Normalize = Callable[[str], str]


@functools.cache
def text_normalizer(language: str = "en") -> Normalize:
    """The normalizer every WER here is computed after: Whisper's own evaluation normalizers.

    For English, transformers' EnglishTextNormalizer (lowercase, punctuation and filler words
    ("um", "uh") removed, contractions expanded, spelled-out numbers turned into digits), so
    "Turn on the Kwintara lamp." and "turn on the kwintara lamp" are the same words. Its
    British-to-American table ships only with some hub checkpoints (normalizer.json), never with
    a CTranslate2 folder, so it is left empty for every model alike: "colour" and "color" differ.
    Other languages: Whisper's BasicTextNormalizer (case, punctuation, symbols).
    """
    from transformers.models.whisper.english_normalizer import BasicTextNormalizer, EnglishTextNormalizer

    if language == "en":
        return EnglishTextNormalizer({})
    return BasicTextNormalizer()


def word_errors(reference: str, hypothesis: str, normalize: Normalize) -> tuple[int, int]:
    """(substitutions + deletions + insertions, reference words) after the normalizer; with no reference
    words, every word heard is an error (jiwer refuses an empty reference)."""
    ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref.strip():
        return len(hyp.split()), 0
    m = jiwer.process_words(ref, hyp)
    return m.substitutions + m.deletions + m.insertions, m.hits + m.substitutions + m.deletions


def word_error_rate(reference: str | None, hypothesis: str, language: str = "en") -> float:
    """Errors over reference words; with no reference words, 1.0 if anything was heard and 0.0 if not."""
    errors, words = word_errors(reference or "", hypothesis, text_normalizer(language))
    return errors / words if words else (1.0 if errors else 0.0)
