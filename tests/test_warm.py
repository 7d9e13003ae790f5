"""The warm-up `main.py serve` starts: the built-in speech's frozen encoder states, cached before the
first Train click, so that click encodes only the user's clips."""
from __future__ import annotations

import dataclasses
import time

import torch
from transformers import WhisperForConditionalGeneration, WhisperProcessor

from stt.assistant.heard import HeardCache
from stt.finetune import modes, ordinary, quiet
from stt.finetune.data import Sample
from stt.finetune.labels import learned_forms
from stt.finetune.run_inputs import prepare
from stt.finetune.state_files import FrozenTail
from stt.models import store
from stt.runs import warm
from stt.runs.measuring import profile_for
from tests import tiny_whisper
from tests.speech import espeak_16k_wav
from utils import disk
from utils.audio import load_for_whisper
from utils.config import AudioConfig


def _with_builtin_speech(cfg):
    return dataclasses.replace(cfg, training=dataclasses.replace(cfg.training, builtin_speech=True))


def test_a_first_run_after_the_warm_up_encodes_only_its_own_clips(cfg, tmp_path):
    cfg = _with_builtin_speech(cfg)
    tiny_whisper.build(cfg.model.path)
    assert warm.wanted(cfg)
    # What a run learns of the rehearsal: most clips one by one, the timestamped share joined into windows.
    plain, windows = learned_forms(ordinary.load("rehearsal"))
    rehearsal, gate = [*plain, *(window for window, _ in windows)], ordinary.watched(ordinary.load("gate"))
    assert windows and len(plain) + sum(len(w.parts) for w, _ in windows) == len(ordinary.load("rehearsal"))
    # The states of every built-in clip a run trains on, watches or only measures.
    assert warm.warm(cfg) == len(rehearsal) + len(ordinary.load("gate")) + len(quiet.clips())
    assert not warm.wanted(cfg) and warm.warm(cfg) == 0  # done once per model folder
    # The built-in sets a run measures were heard through the deployed model, the assistant's way.
    heard = HeardCache(cfg.model.path, profile_for(cfg)).load()
    assert len(heard) == len(ordinary.load("gate")) + 1 + len(quiet.clips())

    own = [Sample(i + 1, text, load_for_whisper(espeak_16k_wav(text), AudioConfig()))
           for i, text in enumerate(["Turn on the lamp.", "Dim the heater.", "Call my sister."])]
    processor = WhisperProcessor.from_pretrained(str(cfg.model.path))
    model = WhisperForConditionalGeneration.from_pretrained(str(cfg.model.path))
    def run_inputs(scratch):
        scratch.mkdir()
        return prepare(model, processor, modes.resolve(cfg.training.mode, "cpu"), "cpu", [*own[:2], *rehearsal],
                       {"heldout": own[2:], "ordinary": gate}, cfg.training, store.state_cache_dir(cfg.model.path),
                       scratch, lambda done, total: None)

    inputs = run_inputs(tmp_path / "scratch")
    assert inputs.encoded == len(own)
    # The top's tails came from the warm-up too: the run made only its own.
    assert len(list((tmp_path / "scratch" / "tail").glob("*.npy"))) == len(own)
    key = inputs.key_of[id(rehearsal[0])]
    states = inputs.cache.get([key])
    fresh = FrozenTail(inputs.split, tmp_path / "fresh")
    fresh.put([key], states)
    assert torch.equal(inputs.tail.get(key, states[0]), fresh.get(key, states[0]))  # what the run would compute

    with torch.no_grad():  # a deployed run's new top: the warm-up's tails are of other weights, so none is read
        model.get_encoder().layer_norm.bias.add_(0.1)
    run_inputs(tmp_path / "after-a-run")
    assert len(list((tmp_path / "after-a-run" / "tail").glob("*.npy"))) == len(own) + len(rehearsal) + len(gate)


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


def test_a_deploy_warms_again_only_where_the_app_is_served(cfg, monkeypatch):
    started = []
    monkeypatch.setattr(warm, "start", started.append)
    monkeypatch.setattr(warm, "_serving", False)
    warm.after_deploy(cfg)  # a command-line run or a test's app: no warm-up in the background
    monkeypatch.setattr(warm, "_serving", True)
    warm.after_deploy(cfg)
    assert started == [cfg]


def test_the_warm_up_keeps_the_margin_the_user_set(cfg, monkeypatch):
    """Its process gets the settings it needs, the free space kept for the assistant among them (issue 31)."""
    import json

    from utils import background

    commands = []
    monkeypatch.setattr(background, "start_helper", lambda command, **kw: commands.append(command))
    monkeypatch.setattr(warm, "wanted", lambda cfg: True)
    monkeypatch.setattr(warm, "_process", None)
    cfg.database.keep_free_mb = 250
    assert warm.start(cfg)
    assert json.loads(commands[0][-1])["database"] == {"keep_free_mb": 250}


def test_the_warm_up_stays_within_the_cache_limit(cfg):
    """A run cuts the cache to its limit; a warm-up filling it past that would be cut after every run and then
    encode the same clips again (found by bench/twenty_runs_check.py). A changed limit warms again."""
    cfg = _with_builtin_speech(cfg)
    tiny_whisper.build(cfg.model.path)
    cfg.training.cache_limit_mb = 1
    computed = warm.warm(cfg)
    assert 0 < computed < len(ordinary.load("gate"))  # the 64-wide states take 192 KB a clip
    assert disk.folder_size(store.state_cache_dir(cfg.model.path)) <= disk.MB
    assert not warm.wanted(cfg) and warm.warm(cfg) == 0
    cfg.training.cache_limit_mb = 0
    assert warm.wanted(cfg)


def test_a_mode_that_keeps_no_states_is_warmed_at_once(cfg):
    cfg = _with_builtin_speech(cfg)
    cfg = dataclasses.replace(cfg, training=dataclasses.replace(cfg.training, mode="full"))
    tiny_whisper.build(cfg.model.path)
    assert warm.warm(cfg) == 0 and not warm.wanted(cfg)  # nothing to compute, and not started again
