"""Whether a trained model may replace the deployed one, judged with the noise of a few clips in mind.

A run measures WER before and after training on up to three sets: the
held-out items (the user's domain), the user's regression checks, and the
built-in ordinary speech (stt.finetune.ordinary). A model is kept out only if one of
them got worse by more than `wer_tolerance` *and* that rise is unlikely to be
chance: in a paired bootstrap over clips (each resample draws clips with
replacement and compares the same clips before and after), the share of
resamples in which the set got worse reaches `deploy_confidence`. One changed
word among six measured no longer vetoes a model that halved the domain's
errors, while a model that writes the user's names into ordinary sentences
(many clips worse at once) is still stopped.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from utils.formatting import percent, signed_percent

SET_NAMES = {"heldout": "held-out", "regression": "regression", "ordinary": "built-in ordinary speech"}
# Held-out clips the reviewer marked as holding no speech: measured by the share of them on which the
# model writes any word (a false wake turned into a command), which must not rise at all.
NO_SPEECH = "no_speech"
RESAMPLES = 2000


@dataclass
class Check:
    name: str
    before: float
    after: float
    words: int
    worse_share: float   # share of bootstrap resamples in which this set got worse by more than the tolerance
    blocks: bool


def worse_share(before: Sequence[Sequence[int]], after: Sequence[Sequence[int]], tolerance: float,
                resamples: int = RESAMPLES, seed: int = 0) -> float:
    """Share of paired bootstrap resamples of the clips whose WER rose by more than `tolerance`.

    `before` and `after` are per-clip (errors, words) of the same clips. A
    fixed seed keeps a run's verdict the same when it is shown again.
    """
    errors_before = np.array([e for e, _ in before], dtype=np.float64)
    errors_after = np.array([e for e, _ in after], dtype=np.float64)
    words = np.array([w for _, w in before], dtype=np.float64)
    if len(words) == 0:
        return 0.0
    picks = np.random.default_rng(seed).integers(0, len(words), size=(resamples, len(words)))
    total = np.maximum(words[picks].sum(axis=1), 1.0)
    rise = (errors_after[picks].sum(axis=1) - errors_before[picks].sum(axis=1)) / total
    return float((rise > tolerance + 1e-12).mean())


def with_words(scores: Sequence[Sequence[int]]) -> float:
    """Share of clips without speech on which the model wrote anything (every word there is an error)."""
    return sum(1 for e, _ in scores if e > 0) / max(len(scores), 1)


def checks(clip_errors: dict[str, dict[str, Any]], tolerance: float, confidence: float) -> list[Check]:
    """One Check per measured set, in the order of SET_NAMES, then the clips without speech."""
    out = []
    for key, name in SET_NAMES.items():
        scores = clip_errors.get(key)
        if not scores:
            continue
        before, after = scores["before"], scores["after"]
        words = sum(w for _, w in before)
        wer_before = sum(e for e, _ in before) / max(words, 1)
        wer_after = sum(e for e, _ in after) / max(words, 1)
        share = worse_share(before, after, tolerance)
        out.append(Check(name, wer_before, wer_after, words, share,
                         blocks=wer_after > wer_before + tolerance and share >= confidence))
    silent = clip_errors.get(NO_SPEECH)
    if silent:
        before, after = with_words(silent["before"]), with_words(silent["after"])
        out.append(Check(NO_SPEECH, before, after, len(silent["before"]), 1.0 if after > before else 0.0,
                         blocks=after > before))
    return out


def worse_sets(clip_errors: dict[str, dict[str, Any]]) -> list[str]:
    """The measured sets on which the new model did worse at all, by name: a model deployed with a rise
    within chance is still announced as such (the dashboard's amber banner), never as a plain success."""
    return [c.name for c in checks(clip_errors, 0.0, 1.0) if c.after > c.before]


def verdict(clip_errors: dict[str, dict[str, Any]], tolerance: float, confidence: float) -> tuple[bool, str]:
    """(deploy?, the sentence the user reads), naming what got worse, how sure that is, and what would help."""
    found = checks(clip_errors, tolerance, confidence)
    blocking = [c for c in found if c.blocks]
    if blocking and blocking[0].name == NO_SPEECH:
        c = blocking[0]
        return False, (f"Not deployed: the new model writes words on {percent(c.after, 0)} of the {c.words} "
                       f"held-out clips without speech, up from {percent(c.before, 0)}. It is kept as a rejected "
                       "version: deploy it from the history if you trust it more, or mark more clips without speech "
                       "(Alt+N) for training.")
    if blocking:
        c = blocking[0]
        return False, (f"Not deployed: {c.name} WER got worse ({percent(c.before)} → {percent(c.after)} over "
                       f"{c.words} words; worse in {percent(c.worse_share, 0)} of resampled sets, so unlikely to be "
                       "chance). The new model is kept as a rejected version: deploy it from the history if you trust "
                       "it more, add regression checks of your own voice, or raise training.wer_tolerance.")
    notes = [f"words on no-speech clips {percent(c.before, 0)} → {percent(c.after, 0)}" if c.name == NO_SPEECH
             else f"{c.name} {percent(c.before)} → {percent(c.after)}" for c in found]
    doubtful = [c for c in found if c.after > c.before + tolerance and c.name != NO_SPEECH]
    caveat = "".join(f" The {c.name} rise ({signed_percent(c.after - c.before)} over {c.words} words) is within "
                     f"chance (worse in {percent(c.worse_share, 0)} of resampled sets); more regression checks make "
                     "this surer."
                     for c in doubtful)
    if not found:
        return True, "Deployed (no held-out items to measure WER on)."
    return True, f"Deployed: WER {'; '.join(notes)}.{caveat}"
