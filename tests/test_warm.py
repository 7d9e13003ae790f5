"""The warm-up `main.py serve` starts: the built-in speech's frozen encoder states, cached before the
first Train click, so that click encodes only the user's clips."""
from __future__ import annotations

import dataclasses
import time

from transformers import WhisperForConditionalGeneration, WhisperProcessor

from stt.finetune import modes, ordinary
from stt.finetune.data import Sample
from stt.finetune.run_inputs import prepare
from stt.models import store
from stt.runs import warm
from tests import tiny_whisper
from tests.speech import espeak_16k_wav
from utils.audio import load_for_whisper
from utils.config import AudioConfig


def _with_builtin_speech(cfg):
    return dataclasses.replace(cfg, training=dataclasses.replace(cfg.training, builtin_speech=True))


def test_a_first_run_after_the_warm_up_encodes_only_its_own_clips(cfg, tmp_path):
    cfg = _with_builtin_speech(cfg)
    tiny_whisper.build(cfg.model.path)
    assert warm.wanted(cfg)
    rehearsal, gate = ordinary.load("rehearsal"), ordinary.load("gate")
    assert warm.warm(cfg) == len(rehearsal) + len(gate)
    assert not warm.wanted(cfg) and warm.warm(cfg) == 0  # done once per model folder

    own = [Sample(i + 1, text, load_for_whisper(espeak_16k_wav(text), AudioConfig()))
           for i, text in enumerate(["Turn on the lamp.", "Dim the heater.", "Call my sister."])]
    processor = WhisperProcessor.from_pretrained(str(cfg.model.path))
    model = WhisperForConditionalGeneration.from_pretrained(str(cfg.model.path))
    (tmp_path / "scratch").mkdir()
    inputs = prepare(model, processor, modes.resolve(cfg.training.mode, "cpu"), "cpu", [*own[:2], *rehearsal],
                     {"heldout": own[2:], "ordinary": gate}, cfg.training, store.state_cache_dir(cfg.model.path),
                     tmp_path / "scratch", lambda done, total: None)
    assert inputs.encoded == len(own)


def test_the_warm_up_runs_in_its_own_process_and_a_run_ends_it(cfg):
    cfg = _with_builtin_speech(cfg)
    assert not warm.wanted(cfg) and not warm.start(cfg)  # no model yet: nothing to warm
    tiny_whisper.build(cfg.model.path)
    assert warm.start(cfg)
    assert not warm.start(cfg)  # one at a time
    deadline = time.monotonic() + 120
    while warm.wanted(cfg) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not warm.wanted(cfg)
    warm.stop()
    (cfg.model.path / "config.json").touch()  # a deploy: another model folder, warmed again (nothing to compute)
    assert warm.wanted(cfg)
    assert not warm.wanted(dataclasses.replace(cfg, training=dataclasses.replace(cfg.training,
                                                                                builtin_speech=False)))


def test_a_mode_that_keeps_no_states_is_warmed_at_once(cfg):
    cfg = _with_builtin_speech(cfg)
    cfg = dataclasses.replace(cfg, training=dataclasses.replace(cfg.training, mode="full"))
    tiny_whisper.build(cfg.model.path)
    assert warm.warm(cfg) == 0 and not warm.wanted(cfg)  # nothing to compute, and not started again
