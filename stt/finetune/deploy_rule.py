"""Whether a trained model may replace the deployed one, judged with the noise of a few clips in mind.

A run measures both models the way the assistant decodes (stt/assistant) on up to four sets of
speech: the held-out items (the user's domain), the user's regression checks, the built-in
ordinary speech (stt.finetune.ordinary), and one long recording of it. A model is kept out if
one of them got worse by more than `wer_tolerance` *and* that rise is unlikely to be chance: in a
paired bootstrap over clips (each resample draws clips with replacement and compares the same
clips before and after), the share of resamples in which the set got worse reaches
`deploy_confidence`. One changed word among six no longer vetoes a model that halved the
domain's errors, while a model that writes the user's names into ordinary sentences (many
clips worse at once) is still stopped.

A single disaster stops it too, whatever the rest did: one clip (or one sentence of the long
recording) with five or more new wrong words, a decode that loops or runs to the token cap
where it did not before, or long audio whose timed segments stop making sense. And sounds
without speech: the reviewer's held-out clips marked so may not get words on more of them, and
the built-in ones (stt.finetune.quiet) not on clearly more.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from utils.formatting import percent, signed_percent

SET_NAMES = {"heldout": "held-out", "regression": "regression", "ordinary": "built-in ordinary speech",
             "long_form": "long recording"}
# Held-out clips the reviewer marked as holding no speech: measured by the share of them on which the
# model writes any word (a false wake turned into a command), which must not rise at all.
NO_SPEECH = "no_speech"
# Built-in sounds without speech: the same share, judged by the bootstrap as the speech sets are.
QUIET = "quiet"
SHARE_NAMES = {NO_SPEECH: "held-out clips without speech", QUIET: "built-in sounds without speech"}
RESAMPLES = 2000
# New wrong words on one clip that stop a deploy on their own: a clip that was right and now is not.
DISASTER_WORDS = 5
# A model that broke everything names its first few broken clips, not all of them.
SHOWN_DISASTERS = 3


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


def _share_check(name: str, scores: dict[str, Any], confidence: float) -> Check:
    """A set of clips without speech: the share with words; the reviewer's own may not rise at all, the
    built-in ones not beyond chance (each clip one "word", wrong when anything was written)."""
    before, after = with_words(scores["before"]), with_words(scores["after"])
    if name == NO_SPEECH:
        return Check(name, before, after, len(scores["before"]), 1.0 if after > before else 0.0, after > before)
    as_words = {stage: [(int(e > 0), 1) for e, _ in scores[stage]] for stage in ("before", "after")}
    share = worse_share(as_words["before"], as_words["after"], 0.0)
    return Check(name, before, after, len(scores["before"]), share, after > before and share >= confidence)


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
    return out + [_share_check(key, clip_errors[key], confidence) for key in SHARE_NAMES if clip_errors.get(key)]


def disasters(clip_errors: dict[str, dict[str, Any]], faults: dict[str, dict[str, Any]]) -> list[str]:
    """What broke on a single clip, each as a phrase: five or more new wrong words, a decode that loops
    or runs to the cap, or timed segments that make no sense, where the deployed model had none."""
    found = []
    for key, name in SET_NAMES.items():
        scores = clip_errors.get(key)
        pairs = list(zip(scores["before"], scores["after"])) if scores else []
        if key == "long_form" and pairs:
            # The recording is one clip: its sentences are judged together, as a set, by checks(); a
            # sentence misheard among 24 is a rise there, not a disaster of its own.
            pairs = [((sum(b[0] for b, _ in pairs), sum(b[1] for b, _ in pairs)), (sum(a[0] for _, a in pairs), 0))]
        for (was, words), (now, _) in pairs:
            if now - was >= DISASTER_WORDS:
                where = f"the {name}" if key == "long_form" else f"one {name} clip"
                found.append(f"{where} went from {was} to {now} wrong words of {words}")
        marks = faults.get(key)
        for (looped_before, bad_before), (looped_after, bad_after) in \
                zip(marks["before"], marks["after"]) if marks else ():
            if looped_after and not looped_before:
                found.append(f"the decode of a {name} clip loops or runs to the token cap")
            if bad_after > bad_before:
                found.append(f"the {name} has {bad_after} timed segment(s) that end before they start, run past "
                             f"the audio or go back in time ({bad_before} before)")
    return found


def worse_sets(clip_errors: dict[str, dict[str, Any]]) -> list[str]:
    """The measured sets on which the new model did worse at all, by name: a model deployed with a rise
    within chance is still announced as such (the dashboard's amber banner), never as a plain success."""
    return [c.name for c in checks(clip_errors, 0.0, 1.0) if c.after > c.before]


def _refusal(c: Check) -> str:
    if c.name in SHARE_NAMES:
        return (f"Not deployed: the new model writes words on {percent(c.after, 0)} of the {c.words} "
                f"{SHARE_NAMES[c.name]}, up from {percent(c.before, 0)}. It is kept as a rejected version: deploy "
                "it from the history if you trust it more, or mark more clips without speech (Alt+N) for training.")
    return (f"Not deployed: {c.name} WER got worse ({percent(c.before)} → {percent(c.after)} over "
            f"{c.words} words; worse in {percent(c.worse_share, 0)} of resampled sets, so unlikely to be "
            "chance). The new model is kept as a rejected version: deploy it from the history if you trust "
            "it more, add regression checks of your own voice, or raise training.wer_tolerance.")


def verdict(clip_errors: dict[str, dict[str, Any]], tolerance: float, confidence: float,
            faults: dict[str, dict[str, Any]] | None = None) -> tuple[bool, str]:
    """(deploy?, the sentence the user reads), naming what got worse, how sure that is, and what would help.
    `faults` holds each clip's [looped, bad segments] before and after, per set."""
    found = checks(clip_errors, tolerance, confidence)
    blocking = [c for c in found if c.blocks]
    if blocking:  # a whole set got worse: the plainest reason, and the one to act on
        return False, _refusal(blocking[0])
    broke = disasters(clip_errors, faults or {})
    if broke:
        more = f"; and {len(broke) - SHOWN_DISASTERS} more" if len(broke) > SHOWN_DISASTERS else ""
        return False, (f"Not deployed: {'; '.join(broke[:SHOWN_DISASTERS])}{more}. One clip the assistant gets "
                       "badly wrong outweighs small gains elsewhere. The new model is kept as a rejected version: "
                       "deploy it from the history if you trust it more.")
    notes = [f"words on {SHARE_NAMES[c.name]} {percent(c.before, 0)} → {percent(c.after, 0)}"
             if c.name in SHARE_NAMES else f"{c.name} {percent(c.before)} → {percent(c.after)}" for c in found]
    doubtful = [c for c in found if c.after > c.before + (0 if c.name in SHARE_NAMES else tolerance)]
    caveat = "".join(f" The {c.name} rise ({signed_percent(c.after - c.before)} over {c.words} words) is within "
                     f"chance (worse in {percent(c.worse_share, 0)} of resampled sets); more regression checks make "
                     "this surer." for c in doubtful if c.name not in SHARE_NAMES)
    if not found:
        return True, "Deployed (no held-out items to measure WER on)."
    return True, f"Deployed: WER {'; '.join(notes)}.{caveat}"
