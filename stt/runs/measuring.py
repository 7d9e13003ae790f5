"""Both models heard the way the assistant decodes, on every set a run measures: the deployed folder
before, and the very folder that would replace it after (a trained model exported to the deployed
format, or an imported one). The deploy rule (stt/finetune/deploy_rule.py) judges what this returns.

The sets: the held-out items, the regression checks, the built-in ordinary speech (while the user
has few checks of their own), one long recording of it, the held-out clips marked without speech,
and the built-in sounds without speech (stt/finetune/quiet.py). The deployed model's results are
kept between runs (stt/assistant/heard.py), so "before" decodes only clips it has not heard yet.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stt.assistant import evaluation
from stt.assistant.decoder import CachedBottoms, DecodeError, open_decoder
from stt.assistant.evaluation import ClipScore
from stt.assistant.heard import HeardCache, clip_key
from stt.assistant.profile import Profile, resolve
from stt.finetune import ordinary, quiet
from stt.finetune.data import Sample
from stt.finetune.timings import PhaseClock
from stt.models import store
from stt.models.model_format import detect_format
from utils.config import Config

# The sets a run measures, in the order the history names them.
SETS = ("heldout", "regression", "ordinary", "long_form", "no_speech", "quiet")
# Sets judged by word errors (the rest by the share of clips on which the model writes anything).
SPEECH = ("heldout", "regression", "ordinary", "long_form")
# (stage, clips done, clips in all): a caller's progress, which may raise to cancel.
Report = Callable[[str, int, int], None]


class MeasureError(RuntimeError):
    """A model could not be loaded or decoded the assistant's way; the message says which and why."""


@dataclass
class Measurement:
    """Each measured set's clip scores, "before" and "after", and the profile they were heard with."""
    profile: Profile
    sets: dict[str, list[Sample]]
    scores: dict[str, dict[str, list[ClipScore]]] = field(default_factory=dict)

    def clip_errors(self) -> dict[str, dict[str, list[list[int]]]]:
        """Per set and stage, each clip's [errors, words]; the long recording's per sentence, so the deploy
        rule resamples sentences and can name the one that broke."""
        def units(scores: list[ClipScore]) -> list[list[int]]:
            return [list(part) for s in scores for part in (s.parts or ((s.errors, s.words),))]
        return {name: {stage: units(got) for stage, got in stages.items()} for name, stages in self.scores.items()}

    def faults(self) -> dict[str, dict[str, list[list[int]]]]:
        """Per set and stage, each clip's [looped, bad segments]."""
        return {name: {stage: [[int(s.looped), s.bad_segments] for s in got] for stage, got in stages.items()}
                for name, stages in self.scores.items()}

    def _rate(self, name: str, stage: str) -> float | None:
        got = self.scores.get(name, {}).get(stage)
        if not got:
            return None
        return evaluation.wer(got) if name in SPEECH else evaluation.with_words(got)

    def metrics(self) -> dict[str, Any]:
        """What a run's result and its version keep: the figures the pages show, and the clip scores."""
        out: dict[str, Any] = {"heard_as": self.profile.describe(), "clip_errors": self.clip_errors(),
                               "faults": self.faults(),
                               "judged": {name: len(group) for name, group in self.sets.items() if group}}
        for name, label in (("heldout", "wer"), ("regression", "regression_wer"), ("ordinary", "ordinary_wer"),
                            ("long_form", "long_form_wer"), ("no_speech", "no_speech"), ("quiet", "quiet")):
            out[f"{label}_before"], out[f"{label}_after"] = self._rate(name, "before"), self._rate(name, "after")
        held = self.scores.get("heldout", {})
        # With the word errors the run counted (after Whisper's normalizer), so the page does not strike
        # "30%" against "thirty percent" where the run counted no error.
        out["heldout_clips"] = [{"id": s.id, "reference": s.text, "before": b.text, "after": a.text,
                                 "before_errors": b.errors, "after_errors": a.errors}
                                for s, b, a in zip(self.sets.get("heldout", []), held.get("before", []),
                                                   held.get("after", []))]
        return out


# How the history names each set's clips.
_CLIPS = {"heldout": "held-out clips", "regression": "regression checks", "ordinary": "built-in sentences",
          "long_form": "long recording", "no_speech": "held-out clips without speech",
          "quiet": "built-in sounds without speech"}


def roles(chose: dict[str, int], judged: dict[str, int]) -> str:
    """Which clips chose the epoch and the blend (by their loss) and which judged the deploy (heard the
    assistant's way), saying where the same clips did both."""
    def named(counts: dict[str, int]) -> str:
        return ", ".join(f"{n} {_CLIPS[k]}" if k != "long_form" else "the long recording"
                         for k, n in counts.items() if n)
    both = {k: min(n, judged.get(k, 0)) for k, n in chose.items() if judged.get(k)}
    alone = {k: n - both.get(k, 0) for k, n in judged.items()}
    text = (f"Chose the epoch and the blend: {named(chose)}." if any(chose.values())
            else "Nothing chose the epoch: every epoch was trained and the last kept whole.")
    text += f" Judged the deploy: {named(judged)}." if any(judged.values()) else ""
    if any(both.values()):
        text += (f" Both: {named(both)}; judged alone: {named(alone) or 'none'}.")
    return text


def profile_for(cfg: Config) -> Profile:
    """How the assistant decodes the configured model folder."""
    return resolve(cfg.assistant, detect_format(cfg.model.path))


def cached_bottoms(cfg: Config) -> CachedBottoms | None:
    """The run's state cache, where a cached mode keeps each clip's frozen encoder output (which a model decoded
    with transformers starts from); None in the modes that keep none."""
    from stt.finetune import modes
    from stt.finetune.engine import pick_device

    mode = modes.resolve(cfg.training.mode, pick_device())
    if not mode.cached:
        return None
    return CachedBottoms(store.state_cache_dir(cfg.model.path),
                         lambda layers: mode.trained_layers(layers, cfg.training.adapt_layers))


def builtin_checks() -> dict[str, list[Sample]]:
    """What every run measures of the built-in material beside the gate: the long recording and the sounds
    without speech (never trained on, so the same clips judge every run)."""
    return {"long_form": [ordinary.long_form(ordinary.load("gate"))], "quiet": quiet.clips()}


def hear_deployed(cfg: Config, sets: dict[str, Sequence[Sample]], report: Callable[[int, int], None],
                  workers: int | None = None) -> dict[str, list[Any]]:
    """What the deployed model writes for every clip of `sets`, the assistant's way: from the heard cache
    where it has the clip, decoded (and added to it) where not. The warm-up calls it for the built-in
    sets while the user reviews, a run for all it measures."""
    profile = profile_for(cfg)
    cache = HeardCache(cfg.model.path, profile)
    sets = {name: list(group) for name, group in sets.items()}
    heard = _hear(cfg.model.path, profile, sets, cache.load(), report, "The deployed model",
                  "so nothing can be compared with it: check the [assistant] settings", workers, cached_bottoms(cfg))
    try:
        cache.save({clip_key(s.audio): h for name, group in sets.items() for s, h in zip(group, heard[name])})
    except OSError:
        pass  # only a later run's head start is lost
    return heard


def measure(cfg: Config, sets: dict[str, Sequence[Sample]], candidate: Path, report: Report,
            clock: PhaseClock | None = None) -> Measurement:
    """The deployed model and `candidate` on every non-empty set, heard as `cfg.assistant` says;
    MeasureError when either cannot be loaded or decoded that way (nothing is deployed then)."""
    clock = clock or PhaseClock()
    profile = profile_for(cfg)
    sets = {name: list(group) for name, group in sets.items() if group}
    result = Measurement(profile, sets)
    normalize = evaluation.text_normalizer(profile.language)
    with clock("measuring before"):
        heard = hear_deployed(cfg, sets, lambda done, total: report("before", done, total))
        before = evaluation.score_sets(sets, heard, normalize)
    with clock("measuring after"):
        heard = _hear(candidate, profile, sets, None, lambda done, total: report("after", done, total),
                      "The new model, exported as the assistant loads it,", "so it was not deployed",
                      bottoms=cached_bottoms(cfg))
        after = evaluation.score_sets(sets, heard, normalize)
    result.scores = {name: {"before": before[name], "after": after[name]} for name in sets}
    return result


def _hear(folder: Path, profile: Profile, sets: dict[str, list[Sample]], known: dict[str, Any] | None,
          report: Callable[[int, int], None], what: str, outcome: str, workers: int | None = None,
          bottoms: CachedBottoms | None = None) -> dict[str, list[Any]]:
    known = known or {}
    if all(clip_key(s.audio) in known for group in sets.values() for s in group):
        report(1, 1)
        return {name: [known[clip_key(s.audio)] for s in group] for name, group in sets.items()}
    try:
        decoder = open_decoder(folder, profile, workers, bottoms)
        return evaluation.hear_sets(decoder, sets, known, lambda s: clip_key(s.audio), report)
    except DecodeError as exc:
        raise MeasureError(f"{what} cannot be loaded the way the assistant loads it ({exc}), {outcome}") from exc
    except (RuntimeError, ValueError, OSError) as exc:
        raise MeasureError(f"{what} cannot be decoded the way the assistant decodes ({profile.describe()}: "
                           f"{exc}), {outcome}") from exc
