"""A cached file that cannot be read is named, moved aside and computed again; the run goes on (issue 32,
item 5: one pickled or truncated .npy used to fail every later click with "Array can't be memory-mapped")."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import WhisperForConditionalGeneration, WhisperProcessor

from stt.finetune import modes
from stt.finetune.data import Sample
from stt.finetune.run_inputs import prepare
from stt.finetune.state_files import sound
from stt.models import store
from tests import tiny_whisper
from tests.speech import espeak_16k_wav
from utils.audio import load_for_whisper
from utils.config import AudioConfig


def _pickled(path) -> None:
    np.save(path, np.array([{"not": "numbers"}], dtype=object), allow_pickle=True)


def _truncated(path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


def test_only_whole_files_of_plain_numbers_are_sound(tmp_path):
    good = tmp_path / "good.npy"
    np.save(good, np.ones((3, 4), np.float32))
    assert sound(good)
    for name, spoil in (("pickled.npy", _pickled), ("truncated.npy", _truncated), ("garbage.npy", None)):
        path = tmp_path / name
        np.save(path, np.ones((3, 4), np.float32))
        spoil(path) if spoil else path.write_bytes(b"\x93NUMPY garbage")
        with pytest.warns(UserWarning, match=name):
            assert not sound(path)
        assert not path.exists() and (tmp_path / f"{name}.bad").is_file()
    assert not sound(tmp_path / "absent.npy")


def test_a_run_after_its_cache_was_spoiled_recomputes_the_spoiled_states(cfg, tmp_path):
    tiny_whisper.build(cfg.model.path)
    model = WhisperForConditionalGeneration.from_pretrained(str(cfg.model.path))
    processor = WhisperProcessor.from_pretrained(str(cfg.model.path))
    clips = [Sample(i + 1, text, load_for_whisper(espeak_16k_wav(text), AudioConfig()))
             for i, text in enumerate(["Turn on the lamp.", "Dim the heater.", "Call my sister."])]
    mode = modes.resolve("adapt", "cpu")

    def run_inputs(scratch):
        scratch.mkdir()
        return prepare(model, processor, mode, "cpu", clips[:2], {"heldout": clips[2:]}, cfg.training,
                       store.state_cache_dir(cfg.model.path), scratch, lambda done, total: None)

    first = run_inputs(tmp_path / "first")
    keys = [first.key_of[id(c)] for c in clips]
    expected = first.cache.get(keys)
    files = [first.cache.folder / f"{k}.npy" for k in keys]
    _pickled(files[0])
    _truncated(files[1])
    with pytest.warns(UserWarning, match="cannot be read"):
        second = run_inputs(tmp_path / "second")
    assert second.encoded == 2  # the two spoiled clips, computed again; the sound one read from the cache
    assert torch.equal(second.cache.get(keys), expected)
    assert files[0].with_name(files[0].name + ".bad").is_file()


def test_states_are_kept_in_half_precision_and_read_back_as_float32_old_float32_files_too(tmp_path):
    """Half the disk (issue 31, item 5); caches written before it (float32) stay readable beside the new ones."""
    from stt.finetune.state_files import StateCache

    cache = StateCache(tmp_path / "states", "weights")
    state = torch.tensor([[1.0, -2.5e-3, 1e5], [0.1, 3.0, -7e4]])
    cache.put("new", state)
    assert np.load(cache.folder / "new.npy").dtype == np.float16
    np.save(cache.folder / "old.npy", state.numpy())
    both = cache.get(["new", "old"])
    assert both.dtype == torch.float32
    limit = torch.finfo(torch.float16).max  # beyond it clamped, as Whisper's fp16 layers do, never inf
    assert torch.equal(both[0], state.clamp(-limit, limit).half().float()) and torch.equal(both[1], state)
