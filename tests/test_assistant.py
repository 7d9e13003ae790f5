"""Hearing a model the assistant's way: the profile, the decoders, scoring with one normalizer, the deployed
model's results kept between runs, and the deploy rule's single disasters."""
from __future__ import annotations

import numpy as np
import pytest

from stt.assistant import evaluation
from stt.assistant.decoder import CachedBottoms, Heard, compression_ratio, open_decoder
from stt.assistant.heard import HeardCache, clip_key
from stt.assistant.profile import fast_path, resolve
from stt.finetune import deploy_rule
from stt.finetune.data import Sample
from tests import tiny_whisper
from utils.config import AssistantConfig, ConfigError, load_config


def test_every_default_is_the_runtimes_own():
    fw = resolve(AssistantConfig(), "ctranslate2")
    assert (fw.runtime, fw.beam_size, fw.timestamps, fw.condition_on_previous_text, fw.no_speech_threshold) == (
        "faster-whisper", 5, True, True, 0.6)
    hf = resolve(AssistantConfig(), "huggingface")
    assert (hf.runtime, hf.beam_size, hf.timestamps, hf.condition_on_previous_text, hf.no_speech_threshold) == (
        "transformers", 1, False, False, None)
    mine = resolve(AssistantConfig(beam_size=1, timestamps="off", no_speech_threshold=2.0, vad_filter=True),
                   "ctranslate2")
    assert (mine.beam_size, mine.timestamps, mine.no_speech_threshold, mine.vad_filter) == (1, False, None, True)
    assert mine.key() != fw.key() and "VAD" in mine.describe() and "beam 1" in mine.describe()
    assert fast_path().describe() == "transformers, beam 1, no timestamps, language en"


def test_the_settings_read_as_an_assistants_call_would_write_them(tmp_path):
    file = tmp_path / "c.toml"
    file.write_text("[assistant]\ntimestamps = false\nbeam_size = 1\nno_speech_threshold = 0.5\n")
    cfg = load_config(file, environ={})
    assert (cfg.assistant.timestamps, cfg.assistant.beam_size, cfg.assistant.no_speech_threshold) == ("off", 1, 0.5)
    for bad in ('runtime = "whisper.cpp"', 'timestamps = "sometimes"', 'language = "English"'):
        file.write_text(f"[assistant]\n{bad}\n")
        with pytest.raises(ConfigError, match="assistant"):
            load_config(file, environ={})


def test_errors_of_a_long_recording_fall_in_their_sentences():
    normalize = evaluation.text_normalizer("en")
    parts = ["Turn on the lamp.", "The weather is fine today.", "Call my sister."]
    got = evaluation.errors_by_part(parts, "turn on the lamp the whether is fine call my sister please", normalize)
    assert got == [(0, 4), (2, 5), (1, 3)]  # "whether", "today" dropped; "please" added after sentence 3
    assert sum(e for e, _ in got) == evaluation.word_errors(" ".join(parts), "turn on the lamp the whether is "
                                                            "fine call my sister please", normalize)[0]
    assert evaluation.errors_by_part(parts, "", normalize) == [(4, 4), (5, 5), (3, 3)]


def test_one_normalizer_per_language():
    english, other = evaluation.text_normalizer(), evaluation.text_normalizer("de")
    assert evaluation.word_errors("Set it to twenty one, please!", "set it to 21 please", english)[0] == 0
    assert evaluation.word_errors("Schalte das Licht ein!", "schalte das licht ein", other)[0] == 0
    # No reference words: every word heard is an error.
    assert evaluation.word_errors("", "thank you", evaluation.text_normalizer()) == (2, 0)


def test_segments_that_make_no_sense_are_counted():
    assert evaluation.bad_segments([(0.0, 2.0), (2.0, 5.0)], 5.0) == 0
    assert evaluation.bad_segments([(0.0, 2.0), (3.0, 2.5)], 5.0) == 1      # ends before it starts
    assert evaluation.bad_segments([(0.0, 2.0), (2.0, 7.0)], 5.0) == 1      # past the audio
    assert evaluation.bad_segments([(0.0, 4.0), (1.0, 4.5)], 5.0) == 1      # back in time
    assert compression_ratio("the the the the the the the the the the the the") > 2.4 > compression_ratio(
        "Turn on the Kwintara lamp.")


def test_the_deployed_models_results_are_kept_per_model_and_profile(tmp_path):
    model = tiny_whisper.build(tmp_path / "model")
    profile = resolve(AssistantConfig(), "huggingface")
    cache = HeardCache(model, profile)
    assert cache.load() == {}
    cache.save({"a": Heard("hello", ((0.0, 1.0),), False)})
    cache.save({"b": Heard("", (), True)})
    assert HeardCache(model, profile).load() == {"a": Heard("hello", ((0.0, 1.0),), False), "b": Heard("", (), True)}
    (model / "config.json").touch()  # a deploy: another model, nothing heard yet; the old file goes at the next save
    fresh = HeardCache(model, profile)
    assert fresh.load() == {}
    fresh.save({})
    assert [p.name for p in cache.folder.iterdir()] == [fresh.file.name]
    fresh.file.write_text("{not json")
    assert fresh.load() == {}
    assert clip_key(np.zeros(10, np.float32)) != clip_key(np.zeros(11, np.float32))


def test_transformers_starting_from_the_cached_bottom_hears_what_it_hears_from_the_audio(tmp_path):
    """The frozen bottom's states a run cached are the encoder's own first layers: decoding from them is the
    same decode without its most expensive part."""
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from stt.finetune.data import log_mel
    from stt.finetune.encoder_states import EncoderSplit
    from stt.finetune.state_files import StateCache, audio_key

    model_dir = tiny_whisper.build(tmp_path / "model")
    profile = resolve(AssistantConfig(), "huggingface")
    rng = np.random.default_rng(0)
    clips = [(0.1 * rng.standard_normal(16000 * (i + 1))).astype(np.float32) for i in range(2)]
    split = EncoderSplit(WhisperForConditionalGeneration.from_pretrained(str(model_dir)), 1)
    extractor = WhisperProcessor.from_pretrained(str(model_dir)).feature_extractor
    cache = StateCache(tmp_path / "states", split.fingerprint(extractor))
    for clip in clips:
        cache.put(audio_key(clip), split.bottom(log_mel(extractor, [clip]))[0])
    plain = open_decoder(model_dir, profile).hear_all(clips)
    reused = open_decoder(model_dir, profile, bottoms=CachedBottoms(tmp_path / "states", lambda layers: 1))
    assert reused._encoded(clips[0]) is not None
    assert reused.hear_all(clips) == plain


def _clips(errors: list[int], words: int = 10) -> list[list[int]]:
    return [[e, words] for e in errors]


def test_one_clip_gone_badly_wrong_stops_a_deploy_whatever_the_rest_did():
    better = {"heldout": {"before": _clips([5] * 20), "after": _clips([1] * 19 + [6])}}
    assert deploy_rule.verdict(better, 0.0, 0.95)[0]  # one clip one word worse among twenty much better: fine
    broke = {"heldout": {"before": _clips([5] * 19 + [0]), "after": _clips([1] * 19 + [5])}}
    ok, message = deploy_rule.verdict(broke, 0.0, 0.95)
    assert not ok and "one held-out clip went from 0 to 5 wrong words of 10" in message
    faults = {"ordinary": {"before": [[0, 0]] * 3, "after": [[0, 0], [1, 0], [0, 0]]}}
    speech = {"ordinary": {"before": _clips([1, 1, 1]), "after": _clips([0, 0, 1])}}
    ok, message = deploy_rule.verdict(speech, 0.0, 0.95, faults)
    assert not ok and "loops or runs to the token cap" in message
    faults = {"long_form": {"before": [[0, 0]], "after": [[0, 2]]}}
    ok, message = deploy_rule.verdict({"long_form": {"before": _clips([1]), "after": _clips([1])}}, 0.0, 0.95,
                                      faults)
    assert not ok and "2 timed segment(s)" in message
    # The long recording is one clip: a sentence misheard among others heard better is judged with the set
    # (its WER, resampled over its sentences), and the whole recording 5 words worse is a disaster.
    misheard = {"long_form": {"before": _clips([0] + [1] * 23, 8), "after": _clips([7] + [0] * 23, 8)}}
    assert deploy_rule.disasters(misheard, {}) == []
    worse = {"long_form": {"before": _clips([0] * 24, 8), "after": _clips([1] * 5 + [0] * 19, 8)}}
    assert deploy_rule.disasters(worse, {}) == ["the long recording went from 0 to 5 wrong words of 192"]
    # A model that broke many clips names the first few, not every one.
    several = {"heldout": {"before": _clips([5] * 19 + [0] * 5), "after": _clips([1] * 19 + [5] * 5)}}
    ok, message = deploy_rule.verdict(several, 0.0, 0.95)
    assert not ok and message.count("went from 0 to 5") == deploy_rule.SHOWN_DISASTERS and "; and 2 more." in message


def test_builtin_sounds_without_speech_stop_a_model_that_writes_on_clearly_more_of_them():
    quiet = [[0, 0]] * 12
    one_more = [[1, 0]] + [[0, 0]] * 11
    many_more = [[2, 0]] * 8 + [[0, 0]] * 4
    speech = {"heldout": {"before": _clips([5] * 10), "after": _clips([1] * 10)}}
    assert deploy_rule.verdict({**speech, "quiet": {"before": quiet, "after": one_more}}, 0.0, 0.95)[0]
    ok, message = deploy_rule.verdict({**speech, "quiet": {"before": quiet, "after": many_more}}, 0.0, 0.95)
    assert not ok and "67% of the 12 built-in sounds without speech, up from 0%" in message
    assert deploy_rule.worse_sets({"quiet": {"before": quiet, "after": one_more}}) == ["quiet"]


def test_a_sample_can_say_its_sentences():
    assert Sample(1, "a b", np.zeros(1, np.float32)).parts == ()
