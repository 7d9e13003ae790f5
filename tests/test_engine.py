"""The training engine on a tiny random Whisper (seconds per test): batching, modes, reproducibility,
cancellation and progress. tests/test_labels.py checks the targets, tests/test_real_model.py that it learns."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import WhisperForConditionalGeneration
from transformers.models.whisper import modeling_whisper

from stt.finetune import engine, modes
from stt.finetune.data import IGNORE_INDEX, SpeechCollator
from stt.finetune.engine import NO_SPEECH_REPEATS, Cancelled, Progress, Sample, fine_tune
from stt.finetune.loop import BLEND_SHARES, optimise
from tests import tiny_whisper
from tests.tiny_whisper import EOT, NO_TIMESTAMPS, SOT
from utils.config import TrainingConfig


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random English-only Whisper, 2+2 layers of width 64, with the real vocabulary."""
    return tiny_whisper.build(tmp_path_factory.mktemp("tiny-whisper"))


def _clip(seed: int, seconds: float = 1.0) -> np.ndarray:
    """A tone plus noise: distinct inputs the random model can learn to tell apart."""
    t = np.arange(int(16000 * seconds)) / 16000
    rng = np.random.default_rng(seed)
    return (0.3 * np.sin(2 * np.pi * (200 + 150 * seed) * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


TEXTS = ["Turn on the Kwintara lamp.", "Ask Zorblax to vacuum.", "Dim the Velmora heater.",
         "Play music on the Orvane speaker.", "Lock the door."]


@pytest.fixture
def samples() -> tuple[list[Sample], list[Sample], list[Sample]]:
    train = [Sample(i + 1, TEXTS[i % len(TEXTS)], _clip(i)) for i in range(5)]
    heldout = [Sample(10, "Turn on the lamp.", _clip(10))]
    regression = [Sample(-1, "Hello there.", _clip(11))]
    return train, heldout, regression


def _cfg(**changes) -> TrainingConfig:
    # A learning rate far above the real default: the random model has to move visibly in a few steps.
    base = TrainingConfig(mode="decoder", learning_rate=3e-3, epochs=2, batch_size=2, warmup_ratio=0.0)
    return dataclasses.replace(base, **changes)


def _watch(heldout: list[Sample], regression: list[Sample] = ()) -> dict[str, list[Sample]]:
    """What a run watches to choose its epoch and blend."""
    return {"heldout": heldout, "regression": list(regression)}


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "model.safetensors"))


def test_collator_pads_and_keeps_the_skipped_targets_in_the_decoders_input() -> None:
    collate = SpeechCollator(pad_token_id=EOT)
    items = [{"inputs": torch.zeros(3, 4), "labels": [SOT, NO_TIMESTAMPS, 11, 12, EOT], "skip": 1},
             {"inputs": torch.ones(3, 4), "labels": [SOT, NO_TIMESTAMPS, 13, EOT], "skip": 0}]
    batch = collate(items)
    assert batch["inputs"].shape == (2, 3, 4)
    # The decoder reads every token but the last; the loss learns the rest, padding and skipped targets left out.
    assert batch["decoder_input_ids"].tolist() == [[SOT, NO_TIMESTAMPS, 11, 12], [SOT, NO_TIMESTAMPS, 13, EOT]]
    assert batch["labels"].tolist() == [[IGNORE_INDEX, 11, 12, EOT], [NO_TIMESTAMPS, 13, EOT, IGNORE_INDEX]]


def test_resolve_mode() -> None:
    assert modes.resolve("auto", "cpu").name == "adapt"
    assert modes.resolve("auto", "cuda").name == "full"
    assert modes.resolve("lora", "cpu").name == "lora"
    with pytest.raises(ValueError):
        modes.resolve("everything", "cpu")


def test_the_config_accepts_exactly_the_modes() -> None:
    from utils.config import TRAINING_MODES

    assert TRAINING_MODES == (modes.AUTO, *modes.NAMES)


def test_decoder_mode_freezes_encoder_and_encodes_each_clip_once(tiny_model, samples, tmp_path, monkeypatch):
    phase = ["none"]
    calls: list[tuple[str, int]] = []
    forward = modeling_whisper.WhisperEncoder.forward

    def counting(self, input_features, *args, **kwargs):
        calls.append((phase[0], int(input_features.shape[0])))
        return forward(self, input_features, *args, **kwargs)

    monkeypatch.setattr(modeling_whisper.WhisperEncoder, "forward", counting)
    train, heldout, regression = samples
    cfg = _cfg(epochs=3)
    result = fine_tune(tiny_model, tmp_path / "out", train, _watch(heldout, regression), cfg,
                       progress=lambda p: phase.__setitem__(0, p.phase))
    clips = len(train) + len(heldout) + len(regression)
    # One batched pass over every clip, before training; never again (not even to validate).
    assert [p for p, _ in calls] == ["preparing"] * math.ceil(clips / cfg.batch_size)
    assert sum(n for _, n in calls) == clips
    assert result.mode == "decoder" and result.steps == 3 * math.ceil(len(train) / cfg.batch_size)

    before, after = _weights(tiny_model), _weights(tmp_path / "out")
    encoder = [k for k in before if ".encoder." in k]
    decoder = [k for k in before if ".decoder.layers." in k]
    assert encoder and all(torch.equal(before[k], after[k]) for k in encoder)
    assert any(not torch.equal(before[k], after[k]) for k in decoder)


def test_loss_decreases_over_epochs(tiny_model, samples, tmp_path):
    train, _, _ = samples
    losses: list[list[float]] = []
    per_epoch = math.ceil(len(train) / 2)

    def record(p: Progress) -> None:
        if p.phase == "training":
            if (p.step - 1) % per_epoch == 0:
                losses.append([])
            losses[-1].append(p.loss)

    result = fine_tune(tiny_model, tmp_path / "out", train, {}, _cfg(epochs=6), progress=record)
    means = [sum(e) / len(e) for e in losses]
    # The loss falls over the run; an epoch may rise once (shuffled batches, warm-up), never twice in a row.
    rises = [later >= earlier for earlier, later in zip(means, means[1:])]
    assert len(means) == 6 and sum(rises) <= 1 and not any(a and b for a, b in zip(rises, rises[1:]))
    assert means[-1] < 0.85 * means[0]
    assert result.train_loss == pytest.approx(means[-1])


def test_same_seed_same_weights(tiny_model, samples, tmp_path):
    train, _, _ = samples
    fine_tune(tiny_model, tmp_path / "a", train, {}, _cfg(epochs=1))
    fine_tune(tiny_model, tmp_path / "b", train, {}, _cfg(epochs=1))
    fine_tune(tiny_model, tmp_path / "c", train, {}, _cfg(epochs=1, seed=7))
    a, b, c = _weights(tmp_path / "a"), _weights(tmp_path / "b"), _weights(tmp_path / "c")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_training_runs_on_deterministic_kernels_on_a_cpu(tiny_model, samples, tmp_path, monkeypatch):
    """Two Train clicks of the same clips on tiny.en in two processes trained weights a little apart (a backward
    kernel's threads adding in any order), enough for the int8 model the assistant decodes to write words on
    other sounds without speech (bench/weights_digest.py --click). The setting is the process's: left as found."""
    seen = []

    def watching(*args, **kwargs):
        seen.append(torch.are_deterministic_algorithms_enabled())
        return optimise(*args, **kwargs)

    monkeypatch.setattr(engine, "optimise", watching)
    fine_tune(tiny_model, tmp_path / "a", samples[0], {}, _cfg(epochs=1))
    assert seen == [True] and not torch.are_deterministic_algorithms_enabled()
    with engine.repeatable("cuda"):  # CUDA's deterministic kernels need settings of their own: not asked for
        assert not torch.are_deterministic_algorithms_enabled()


def test_lora_saves_a_plain_merged_whisper(tiny_model, samples, tmp_path):
    train, heldout, _ = samples
    result = fine_tune(tiny_model, tmp_path / "out", train, _watch(heldout), _cfg(mode="lora", lora_r=4))
    assert result.mode == "lora"
    before, after = _weights(tiny_model), _weights(tmp_path / "out")
    assert set(after) == set(before)  # no lora_A / lora_B / base_layer names left
    assert any(not torch.equal(before[k], after[k]) for k in before if "q_proj" in k)
    model = WhisperForConditionalGeneration.from_pretrained(str(tmp_path / "out"))
    assert type(model) is WhisperForConditionalGeneration


def test_full_mode_trains_the_encoder_too(tiny_model, samples, tmp_path):
    train, heldout, regression = samples
    result = fine_tune(tiny_model, tmp_path / "out", train, _watch(heldout, regression),
                       _cfg(mode="full", epochs=1))
    assert result.mode == "full" and result.steps > 0
    before, after = _weights(tiny_model), _weights(tmp_path / "out")
    assert any(not torch.equal(before[k], after[k]) for k in before if ".encoder.layers." in k)


def test_progress_reports_every_phase_and_result(tiny_model, samples, tmp_path):
    train, heldout, regression = samples
    seen: list[Progress] = []
    result = fine_tune(tiny_model, tmp_path / "out", train, _watch(heldout, regression), _cfg(),
                       progress=seen.append)
    assert [p.phase for p in seen][0] == "preparing" and seen[-1] == Progress("saving", 1, 1)
    phases = list(dict.fromkeys(p.phase for p in seen))
    assert phases == ["preparing", "training", "validating", "blending", "saving"]
    # The checks after each epoch and the blend's move a bar of their own, batch by batch, to its end.
    for name in ("validating", "blending"):
        steps = [(p.step, p.total) for p in seen if p.phase == name]
        assert steps[-1][0] == steps[-1][1] and all(0 < step <= total for step, total in steps)
    # Where the time went, every phase of the engine's, in the order a run goes through them.
    assert list(result.phase_seconds) == ["loading", "encoding", "training", "validation", "blend", "saving"]
    assert all(seconds >= 0 for seconds in result.phase_seconds.values())
    training = [p for p in seen if p.phase == "training"]
    assert [p.step for p in training] == list(range(1, result.steps + 1))
    assert all(p.total == result.steps and p.loss is not None for p in training)
    assert result.train_items == len(train) and result.max_epochs == 2 and result.train_seconds > 0
    assert result.chose == {"heldout": 1, "regression": 1}
    for name in ("model.safetensors", "config.json", "generation_config.json", "tokenizer.json",
                 "preprocessor_config.json"):
        assert (tmp_path / "out" / name).is_file()


@pytest.mark.slow  # two runs per mode
@pytest.mark.parametrize("mode", ["adapt", "full"])
def test_the_stop_watches_the_measured_sets_and_keeps_the_best_epoch(tiny_model, samples, tmp_path, mode):
    train, heldout, regression = samples
    result = fine_tune(tiny_model, tmp_path / "out", train, _watch(heldout, regression), _cfg(mode=mode, epochs=4))
    assert 1 <= result.best_epoch <= result.epochs_run <= 4 and len(result.validation_losses) == result.epochs_run
    losses = result.validation_losses
    assert losses[result.best_epoch - 1] == min(losses)
    # Ended by the stop: the last `patience` epochs did not beat the kept one.
    assert result.epochs_run == 4 or result.epochs_run - result.best_epoch == 2
    assert result.blend in (*BLEND_SHARES, 1.0)
    # Nothing measured: nothing to watch or blend by, every epoch trained and the last one kept whole.
    bare = fine_tune(tiny_model, tmp_path / "bare", train, {}, _cfg(mode=mode, epochs=3))
    assert (bare.epochs_run, bare.best_epoch, bare.validation_losses, bare.blend) == (3, 3, [], 1.0)


def test_a_clip_without_speech_is_trained_on_several_times_an_epoch(tiny_model, samples, tmp_path):
    train, _, _ = samples
    silent = Sample(99, "", np.zeros(16000, dtype=np.float32))
    result = fine_tune(tiny_model, tmp_path / "out", train[:2] + [silent], {}, _cfg(epochs=1, batch_size=1))
    assert result.steps == 2 + NO_SPEECH_REPEATS and result.train_items == 3


def test_no_training_samples_is_an_error(tiny_model, tmp_path):
    with pytest.raises(ValueError):
        fine_tune(tiny_model, tmp_path / "out", [], {}, _cfg())


@pytest.mark.parametrize("stop_in", ["preparing", "training", "validating", "blending"])
def test_should_stop_cancels_without_saving(tiny_model, samples, tmp_path, stop_in):
    train, heldout, regression = samples
    phase = [""]
    with pytest.raises(Cancelled):
        fine_tune(tiny_model, tmp_path / "out", train, _watch(heldout, regression), _cfg(),
                  progress=lambda p: phase.__setitem__(0, p.phase), should_stop=lambda: phase[0] == stop_in)
    assert not (tmp_path / "out").exists()


def test_adapt_mode_trains_the_top_encoder_layer_and_decoder_only(tiny_model, samples, tmp_path):
    train, heldout, regression = samples
    result = fine_tune(tiny_model, tmp_path / "out", train, _watch(heldout, regression),
                       _cfg(mode="adapt", adapt_layers=1))
    assert result.mode == "adapt" and result.trained_layers == 1
    before, after = _weights(tiny_model), _weights(tmp_path / "out")
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert any(".encoder.layers.1." in k for k in changed) and any(".decoder.layers." in k for k in changed)
    # The bottom (convolutions, positions, layer 0) is exactly as it was: its cached output stays valid.
    assert not any(".encoder.layers.0." in k or ".encoder.conv" in k or "encoder.embed_positions" in k
                   for k in changed)


@pytest.mark.slow  # six runs
def test_encoder_states_are_reused_across_runs_and_dropped_when_the_frozen_part_changes(tiny_model, samples,
                                                                                         tmp_path):
    train, heldout, regression = samples
    cache = tmp_path / "cache"
    cfg = _cfg(mode="adapt", adapt_layers=1, epochs=1)
    first = fine_tune(tiny_model, tmp_path / "a", train, _watch(heldout, regression), cfg, cache_dir=cache)
    assert first.encoded_clips == len(train) + len(heldout) + len(regression)
    folders = list(cache.iterdir())
    assert len(folders) == 1 and len(list(folders[0].glob("*.npy"))) == first.encoded_clips
    # A second run on the same model with one new clip encodes that clip only.
    new = Sample(99, "Open the garage.", _clip(20))
    second = fine_tune(tiny_model, tmp_path / "b", [new], _watch(heldout, regression), cfg, cache_dir=cache,
                       rehearsal=train)
    assert second.encoded_clips == 1 and second.rehearsal_items == len(train)
    # The trained model's top layer changed, not its bottom: same fingerprint, nothing to encode.
    third = fine_tune(tmp_path / "b", tmp_path / "c", train, _watch(heldout, regression), cfg, cache_dir=cache)
    assert third.encoded_clips == 0
    # A full fine-tune changes the bottom: its states are stale, recomputed, and the old folder goes.
    fine_tune(tiny_model, tmp_path / "full", train, {}, _cfg(mode="full", epochs=1))
    fourth = fine_tune(tmp_path / "full", tmp_path / "d", train, _watch(heldout, regression), cfg, cache_dir=cache)
    assert fourth.encoded_clips == len(train) + len(heldout) + len(regression)
    assert [f.name for f in cache.iterdir()] != [f.name for f in folders] and len(list(cache.iterdir())) == 1
    # Another split point is another fingerprint too.
    fifth = fine_tune(tmp_path / "full", tmp_path / "e", train, {}, _cfg(mode="decoder", epochs=1),
                      cache_dir=cache)
    assert fifth.encoded_clips == len(train)


def test_rehearsal_clips_are_trained_on_but_not_counted_as_the_runs_items(tiny_model, samples, tmp_path):
    train, heldout, _ = samples
    result = fine_tune(tiny_model, tmp_path / "out", train[:2], _watch(heldout), _cfg(mode="adapt", epochs=1),
                       rehearsal=train[2:])
    assert result.train_items == 2 and result.rehearsal_items == 3
    assert result.steps == math.ceil(5 / 2)  # batches over new and rehearsed clips together


def test_the_run_checks_an_even_spread_of_the_builtin_gate() -> None:
    from stt.finetune.ordinary import WATCHED, watched

    gate = [Sample(-i, f"s{i}", _clip(i)) for i in range(31)]
    assert [s.id for s in watched(gate)] == [0, -4, -8, -12, -16, -20, -24, -28] and WATCHED == 8
    assert watched(gate[:5]) == gate[:5] and watched([]) == []


def test_a_set_that_got_worse_is_named_even_when_deployed() -> None:
    from stt.finetune.deploy_rule import verdict, worse_sets

    # One word more on one of three clips: worse, but within chance, so the rule deploys it.
    clip_errors = {"heldout": {"before": [[2, 7], [3, 7], [2, 6]], "after": [[3, 7], [3, 7], [2, 6]]},
                   "ordinary": {"before": [[20, 100]], "after": [[9, 100]]}}
    deployed, message = verdict(clip_errors, 0.0, 0.95)
    assert deployed and "within chance" in message
    assert worse_sets(clip_errors) == ["held-out"]
    assert worse_sets({"heldout": {"before": [[1, 20]], "after": [[1, 20]]}}) == []
