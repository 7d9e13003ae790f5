"""Word error rate as the engine reports it: Whisper's English normalizer, then jiwer over the corpus.

Normalizing first is what makes the number mean "words heard wrong": the
reviewer writes "Turn on the Kwintara lamp." while Whisper may say "turn on
the Kwintara lamp", and neither case nor punctuation is a recognition error.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

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


def corpus_wer(references: Sequence[str], hypotheses: Sequence[str], normalize: Callable[[str], str]) -> float:
    """Errors (substitutions + deletions + insertions) over reference words, summed over the corpus.

    jiwer refuses empty references, which happen (a reviewed clip of silence,
    or a transcript that is all filler words): their hypothesis words count as
    insertions, which is what jiwer would count if it accepted them.
    """
    refs = [normalize(r) for r in references]
    hyps = [normalize(h) for h in hypotheses]
    kept = [(r, h) for r, h in zip(refs, hyps) if r.strip()]
    errors = sum(len(h.split()) for r, h in zip(refs, hyps) if not r.strip())
    words = 0
    if kept:
        out = jiwer.process_words([r for r, _ in kept], [h for _, h in kept])
        errors += out.substitutions + out.deletions + out.insertions
        words = out.hits + out.substitutions + out.deletions
    if words == 0:
        return 0.0 if errors == 0 else 1.0
    return errors / words
