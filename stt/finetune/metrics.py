"""Word error rate as the engine reports it: Whisper's English normalizer, then jiwer over the corpus.

Normalizing first is what makes the number mean "words heard wrong": the
reviewer writes "Turn on the Kwintara lamp." while Whisper may say "turn on
the Kwintara lamp", and neither case nor punctuation is a recognition error.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jiwer
from transformers.models.whisper.english_normalizer import EnglishTextNormalizer


def text_normalizer(tokenizer: Any) -> Callable[[str], str]:
    """The normalizer the WER is computed after: transformers' `EnglishTextNormalizer`
    (OpenAI's Whisper evaluation normalizer: lowercase, punctuation and filler words
    ("um", "uh") removed, contractions expanded, spelled-out numbers turned into digits).

    Its British-to-American spelling table ships as normalizer.json with the Hub's
    checkpoints; `tokenizer.normalize()` crashes without it, and models converted
    from CTranslate2 (or fetched without that file) do not have it. The normalizer
    is then used with an empty table: everything above still applies, only
    "colour"/"color" count as different words, which only matters if the
    reviewer's spelling differs from the model's.
    """
    mapping = getattr(tokenizer, "english_spelling_normalizer", None) or {}
    return EnglishTextNormalizer(mapping)


def clip_errors(references: Sequence[str], hypotheses: Sequence[str],
                normalize: Callable[[str], str]) -> list[tuple[int, int]]:
    """(errors, reference words) of each clip: substitutions + deletions + insertions.

    Kept per clip so a deploy decision can ask how much of a change is noise
    (stt.finetune.deploy_rule resamples clips). jiwer refuses empty references, which
    happen (a reviewed clip of silence, or a transcript that is all filler
    words): their hypothesis words count as insertions, which is what jiwer
    would count if it accepted them.
    """
    out = []
    for ref, hyp in zip(references, hypotheses):
        r, h = normalize(ref), normalize(hyp)
        if not r.strip():
            out.append((len(h.split()), 0))
            continue
        m = jiwer.process_words(r, h)
        out.append((m.substitutions + m.deletions + m.insertions, m.hits + m.substitutions + m.deletions))
    return out


def wer_of(errors: Sequence[tuple[int, int]]) -> float:
    """Corpus WER from per-clip (errors, words): total errors over total reference words."""
    wrong, words = sum(e for e, _ in errors), sum(w for _, w in errors)
    if words == 0:
        return 0.0 if wrong == 0 else 1.0
    return wrong / words


def corpus_wer(references: Sequence[str], hypotheses: Sequence[str], normalize: Callable[[str], str]) -> float:
    """Errors over reference words, summed over the corpus (see clip_errors)."""
    return wer_of(clip_errors(references, hypotheses, normalize))
