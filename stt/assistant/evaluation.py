"""Sets of clips heard the assistant's way and scored: what a run, a model import and `main.py evaluate`
measure, with one normalizer.

A clip's score is its word errors against the reviewed transcript (stt.assistant.words), whether
its decode looped, and, for a long recording, the timed segments that make no sense: one that
ends before it starts, runs past the end of the audio, or starts before the one before it ended.
A long recording is scored sentence by sentence (its `Sample.parts`), each word error placed in
the sentence it falls in, so the deploy rule can resample sentences and name the one that broke.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import jiwer

from stt.assistant.decoder import Decoder, Heard, open_decoder
from stt.assistant.profile import Profile
from stt.assistant.words import Normalize, text_normalizer, word_errors
from stt.finetune.data import Sample
from stt.models.decoding import SAMPLE_RATE

# A segment may end this far past the audio, or start this far before the previous one ended,
# before it counts as broken: timestamps are 20 ms steps and windows overlap a little.
SEGMENT_SLACK_S = 0.5


@dataclass(frozen=True)
class ClipScore:
    errors: int
    words: int
    text: str
    looped: bool = False
    bad_segments: int = 0
    parts: tuple[tuple[int, int], ...] = ()   # a long recording's (errors, words) per sentence


def bad_segments(segments: Sequence[tuple[float, float]], seconds: float) -> int:
    """Segments that end before they start, run past the audio, or go back in time."""
    bad, latest = 0, 0.0
    for start, end in segments:
        if end < start or end > seconds + SEGMENT_SLACK_S or start < latest - SEGMENT_SLACK_S:
            bad += 1
        latest = max(latest, end)
    return bad


def errors_by_part(parts: Sequence[str], hypothesis: str, normalize: Normalize) -> list[tuple[int, int]]:
    """(errors, words) of each sentence of a long recording against one hypothesis: the alignment of the
    whole places each error at the reference word it falls on (an insertion at the word it follows)."""
    words = [normalize(p).split() for p in parts]
    owner = [i for i, w in enumerate(words) for _ in w]
    out = [[0, len(w)] for w in words]
    hyp = normalize(hypothesis)
    if not owner:
        return [(len(hyp.split()), 0)] + [(0, 0)] * (len(parts) - 1) if parts else []
    if not hyp.strip():
        return [(w, w) for _, w in out]
    for chunk in jiwer.process_words(" ".join(" ".join(w) for w in words), hyp).alignments[0]:
        if chunk.type == "equal":
            continue
        if chunk.type == "insert":
            out[owner[max(0, min(chunk.ref_start_idx - 1, len(owner) - 1))]][0] += \
                chunk.hyp_end_idx - chunk.hyp_start_idx
            continue
        for index in range(chunk.ref_start_idx, chunk.ref_end_idx):
            out[owner[index]][0] += 1
    return [(e, w) for e, w in out]


def score(sample: Sample, heard: Heard, normalize: Normalize) -> ClipScore:
    parts = tuple(errors_by_part(sample.parts, heard.text, normalize)) if sample.parts else ()
    errors, words = (sum(e for e, _ in parts), sum(w for _, w in parts)) if parts else \
        word_errors(sample.text, heard.text, normalize)
    return ClipScore(errors, words, heard.text, heard.looped,
                     bad_segments(heard.segments, len(sample.audio) / SAMPLE_RATE), parts)


def hear_sets(decoder: Decoder, sets: dict[str, Sequence[Sample]], known: dict[str, Heard] | None = None,
              key: Callable[[Sample], str] | None = None,
              progress: Callable[[int, int], None] = lambda done, total: None) -> dict[str, list[Heard]]:
    """What the decoder writes for every clip of every set; clips whose `key` is in `known` are taken
    from there (the deployed model's, heard by an earlier run or the warm-up). `progress(done, total)`
    counts clips over all the sets, so one bar runs once."""
    known = known or {}
    todo = [s for group in sets.values() for s in group if key is None or key(s) not in known]
    fresh = iter(decoder.hear_all([s.audio for s in todo], lambda count: progress(count, len(todo))))
    heard = {id(s): next(fresh) for s in todo}
    return {name: [heard[id(s)] if id(s) in heard else known[key(s)] for s in group]  # type: ignore[misc]
            for name, group in sets.items()}


def score_sets(sets: dict[str, Sequence[Sample]], heard: dict[str, list[Heard]],
               normalize: Normalize) -> dict[str, list[ClipScore]]:
    return {name: [score(s, h, normalize) for s, h in zip(group, heard[name])] for name, group in sets.items()}


def wer(scores: Sequence[ClipScore]) -> float:
    """Corpus WER: every error over every reference word (1.0 when only insertions were counted)."""
    wrong, words = sum(s.errors for s in scores), sum(s.words for s in scores)
    return (wrong / words) if words else (0.0 if wrong == 0 else 1.0)


def with_words(scores: Sequence[ClipScore]) -> float:
    """Share of clips without speech on which the model wrote anything."""
    return sum(1 for s in scores if s.errors > 0) / max(len(scores), 1)


def measure_folder(folder: Path, profile: Profile, sets: dict[str, Sequence[Sample]],
                   progress: Callable[[int, int], None] = lambda done, total: None) -> dict[str, list[ClipScore]]:
    """Every set's clip scores for the model in `folder`, heard the profile's way (DecodeError when the
    folder cannot be loaded so): what `main.py evaluate`, the benchmarks and the tests measure."""
    sets = {name: list(group) for name, group in sets.items()}
    heard = hear_sets(open_decoder(folder, profile), sets, progress=progress)
    return score_sets(sets, heard, text_normalizer(profile.language))
