"""Turn a faster-whisper (CTranslate2) Whisper model into a Hugging Face one.

Users often only have the faster-whisper model their assistant runs, while
fine-tuning needs a PyTorch `WhisperForConditionalGeneration`. The Hub cannot be
reached, so instead of downloading the original checkpoint we rebuild it from
model.bin: CTranslate2 stores the same tensors, only fused differently
(q/k/v in one matrix) and usually in float16, which widens to float32 exactly.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from transformers import (
    GenerationConfig,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
    WhisperProcessor,
    WhisperTokenizerFast,
)

from stt.models.ct2_binary import Ct2Header, count_layers, load_arrays, read_header
from stt.models.model_format import CTRANSLATE2, MULTILINGUAL_MIN_VOCAB, ModelFormatError, detect_format

# Tokens from the tokenizer that HF's generate looks up by id.
_SOT, _EOT, _NO_TS = "<|startoftranscript|>", "<|endoftext|>", "<|notimestamps|>"
_PREV, _TRANSCRIBE, _TRANSLATE = "<|startofprev|>", "<|transcribe|>", "<|translate|>"


class _Weights(dict):
    """model.bin's arrays by name; a missing one is a ModelFormatError naming it, not a bare KeyError."""

    def __init__(self, arrays: dict[str, np.ndarray], model_bin: Path) -> None:
        super().__init__(arrays)
        self.model_bin = model_bin

    def __missing__(self, name: str) -> np.ndarray:
        raise ModelFormatError(f"{self.model_bin} lacks the Whisper variable {name}; it may come from "
                               "a CTranslate2 version this importer does not know")


def _refuse_quantized(header: Ct2Header, ct2_dir: Path) -> None:
    quantized = sorted({v.dtype for v in header.variables.values()
                        if v.name.endswith("weight") and v.dtype in ("int8", "int16")})
    if quantized:
        raise ModelFormatError(
            f"{ct2_dir} holds a {'/'.join(quantized)}-quantized model: quantization rounds the weights "
            "for good, so it cannot be fine-tuned. Point the model path at the float16 or float32 "
            "faster-whisper model instead (or at the Hugging Face distil-small.en folder); the trained "
            "model can be exported back to int8 afterwards.")


def _split(array: np.ndarray, parts: int) -> list[np.ndarray]:
    return np.split(array, parts, axis=0)


def _attention(w: dict[str, np.ndarray], ct2: str, hf: str, fused_qkv: bool) -> dict[str, np.ndarray]:
    """Unfuse CT2 attention: self-attention stores [q; k; v] in linear_0, cross-attention
    stores q in linear_0 and [k; v] in linear_1; the last linear is the output projection.

    HF's k_proj has no bias and the k part of CT2's fused bias is zero; even if it
    were not, q·b_k is the same for every key and cancels in the softmax, so
    dropping it is exact.
    """
    out = {}
    if fused_qkv:
        q_w, k_w, v_w = _split(w[f"{ct2}/linear_0/weight"], 3)
        q_b, _, v_b = _split(w[f"{ct2}/linear_0/bias"], 3)
        out_name = "linear_1"
    else:
        q_w, q_b = w[f"{ct2}/linear_0/weight"], w[f"{ct2}/linear_0/bias"]
        k_w, v_w = _split(w[f"{ct2}/linear_1/weight"], 2)
        _, v_b = _split(w[f"{ct2}/linear_1/bias"], 2)
        out_name = "linear_2"
    out.update({f"{hf}.q_proj.weight": q_w, f"{hf}.q_proj.bias": q_b, f"{hf}.k_proj.weight": k_w,
                f"{hf}.v_proj.weight": v_w, f"{hf}.v_proj.bias": v_b,
                f"{hf}.out_proj.weight": w[f"{ct2}/{out_name}/weight"],
                f"{hf}.out_proj.bias": w[f"{ct2}/{out_name}/bias"]})
    return out


def _norm(w: dict[str, np.ndarray], ct2: str, hf: str) -> dict[str, np.ndarray]:
    return {f"{hf}.weight": w[f"{ct2}/gamma"], f"{hf}.bias": w[f"{ct2}/beta"]}


def _linear(w: dict[str, np.ndarray], ct2: str, hf: str) -> dict[str, np.ndarray]:
    return {f"{hf}.weight": w[f"{ct2}/weight"], f"{hf}.bias": w[f"{ct2}/bias"]}


def _state_dict(w: dict[str, np.ndarray], encoder_layers: int, decoder_layers: int) -> dict[str, np.ndarray]:
    """CT2 variable names (see ctranslate2/specs/whisper_spec.py) to HF parameter names."""
    state = {"model.encoder.embed_positions.weight": w["encoder/position_encodings/encodings"],
             "model.decoder.embed_positions.weight": w["decoder/position_encodings/encodings"],
             "model.decoder.embed_tokens.weight": w["decoder/embeddings/weight"]}
    for conv in ("conv1", "conv2"):
        state.update(_linear(w, f"encoder/{conv}", f"model.encoder.{conv}"))
    for side, count in (("encoder", encoder_layers), ("decoder", decoder_layers)):
        state.update(_norm(w, f"{side}/layer_norm", f"model.{side}.layer_norm"))
        for i in range(count):
            ct2, hf = f"{side}/layer_{i}", f"model.{side}.layers.{i}"
            state.update(_attention(w, f"{ct2}/self_attention", f"{hf}.self_attn", fused_qkv=True))
            state.update(_norm(w, f"{ct2}/self_attention/layer_norm", f"{hf}.self_attn_layer_norm"))
            if side == "decoder":
                state.update(_attention(w, f"{ct2}/attention", f"{hf}.encoder_attn", fused_qkv=False))
                state.update(_norm(w, f"{ct2}/attention/layer_norm", f"{hf}.encoder_attn_layer_norm"))
            state.update(_linear(w, f"{ct2}/ffn/linear_0", f"{hf}.fc1"))
            state.update(_linear(w, f"{ct2}/ffn/linear_1", f"{hf}.fc2"))
            state.update(_norm(w, f"{ct2}/ffn/layer_norm", f"{hf}.final_layer_norm"))
    return state


def _tokenizer(tokenizer_json: Path) -> WhisperTokenizerFast:
    """The tokenizer with Whisper's control tokens registered as special, as in OpenAI's HF
    checkpoints: decoding timestamps relies on the last special id preceding <|0.00|>."""
    added = json.loads(tokenizer_json.read_text(encoding="utf-8")).get("added_tokens", [])
    extra = [t["content"] for t in added if t.get("special") and t["content"] != _EOT]
    return WhisperTokenizerFast(tokenizer_file=str(tokenizer_json), pad_token=_EOT, extra_special_tokens=extra)


def _token_id(tokenizer: WhisperTokenizerFast, token: str) -> int:
    token_id = tokenizer.convert_tokens_to_ids(token)
    # Unknown tokens map to <|endoftext|>, Whisper's unk, so only that token may have its id.
    if token_id is None or (token_id == tokenizer.unk_token_id and token != tokenizer.unk_token):
        raise ModelFormatError(f"tokenizer.json lacks the Whisper token {token}")
    return int(token_id)


def _generation_config(ct2_config: dict, tokenizer: WhisperTokenizerFast, vocab_size: int,
                       max_length: int) -> GenerationConfig:
    """What HF's Whisper generate needs to decode like faster-whisper: the same suppressed
    tokens, the same prompt (<|startoftranscript|> [lang task] <|notimestamps|>) and the
    alignment heads for word timestamps."""
    ids = {token: _token_id(tokenizer, token) for token in (_SOT, _EOT, _NO_TS, _PREV, _TRANSCRIBE, _TRANSLATE)}
    multilingual = vocab_size >= MULTILINGUAL_MIN_VOCAB
    config = GenerationConfig(
        decoder_start_token_id=ids[_SOT], bos_token_id=ids[_SOT], eos_token_id=ids[_EOT],
        pad_token_id=ids[_EOT], max_length=max_length,
        suppress_tokens=[int(i) for i in ct2_config.get("suppress_ids") or []],
        begin_suppress_tokens=[int(i) for i in ct2_config.get("suppress_ids_begin") or []],
        alignment_heads=[[int(layer), int(head)] for layer, head in ct2_config.get("alignment_heads") or []],
        is_multilingual=multilingual, no_timestamps_token_id=ids[_NO_TS], prev_sot_token_id=ids[_PREV],
        max_initial_timestamp_index=50, return_timestamps=False)
    # HF's generate detects and inserts a language token whenever lang_to_id exists, whatever
    # is_multilingual says, so English-only models must not have one (faster-whisper sends
    # no language token to them either).
    if multilingual:
        lang_ids = [int(i) for i in ct2_config.get("lang_ids") or []]
        config.lang_to_id = {tokenizer.convert_ids_to_tokens(i): i for i in lang_ids}
        config.task_to_id = {"transcribe": ids[_TRANSCRIBE], "translate": ids[_TRANSLATE]}
    return config


def _build_model(header: Ct2Header, w: dict[str, np.ndarray], ct2_config: dict,
                 tokenizer: WhisperTokenizerFast) -> WhisperForConditionalGeneration:
    """The HF model with its config inferred from the array shapes, holding the CT2 weights."""
    encoder_layers, decoder_layers = count_layers(header, "encoder"), count_layers(header, "decoder")
    embeddings = w["decoder/embeddings/weight"]
    vocab_size, d_model = (int(n) for n in embeddings.shape)
    projection = header.variables.get("decoder/projection/weight")
    # Whisper ties the output projection to the token embeddings; CT2 normally stores it as
    # an alias, but older converters wrote a copy, which is only tied if it is identical.
    tied = projection is None or projection.name == "decoder/embeddings/weight" \
        or np.array_equal(w[projection.name], embeddings)

    sot, eot = _token_id(tokenizer, _SOT), _token_id(tokenizer, _EOT)
    max_target = int(w["decoder/position_encodings/encodings"].shape[0])
    config = WhisperConfig(
        vocab_size=vocab_size, d_model=d_model,
        num_mel_bins=int(w["encoder/conv1/weight"].shape[1]),
        encoder_layers=encoder_layers, decoder_layers=decoder_layers,
        encoder_attention_heads=int(w["encoder/num_heads"]), decoder_attention_heads=int(w["decoder/num_heads"]),
        encoder_ffn_dim=int(w["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
        decoder_ffn_dim=int(w["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
        max_source_positions=int(w["encoder/position_encodings/encodings"].shape[0]),
        max_target_positions=max_target, decoder_start_token_id=sot, bos_token_id=sot,
        eos_token_id=eot, pad_token_id=eot, tie_word_embeddings=tied,
        # Decoding settings live in generation_config.json alone, so they cannot disagree.
        suppress_tokens=None, begin_suppress_tokens=None)
    generation_config = _generation_config(ct2_config, tokenizer, vocab_size, max_target)

    state = {name: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
             for name, a in _state_dict(w, encoder_layers, decoder_layers).items()}
    state["proj_out.weight"] = state["model.decoder.embed_tokens.weight"] if tied \
        else torch.from_numpy(w[projection.name].astype(np.float32))
    # Building on the meta device skips a pointless random initialisation of every weight;
    # assign=True then adopts our tensors as the parameters.
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    model.load_state_dict(state, strict=True, assign=True)
    if tied:
        model.tie_weights()  # one shared Parameter, not two that merely share storage
    model.generation_config = generation_config
    return model


def ct2_to_hf(ct2_dir: Path, out_dir: Path) -> None:
    """Write a Hugging Face Whisper folder (model, processor, generation config) for the
    CTranslate2 Whisper model in `ct2_dir`.

    Everything is validated before `out_dir` is touched, so a refused model
    (quantized, not Whisper, no tokenizer) leaves no half-written folder behind.
    """
    ct2_dir, out_dir = Path(ct2_dir), Path(out_dir)
    if detect_format(ct2_dir) != CTRANSLATE2:
        raise ModelFormatError(f"{ct2_dir} is already a Hugging Face model; there is nothing to import")
    header = read_header(ct2_dir / "model.bin")
    if header.spec_name != "WhisperSpec":
        kind = header.spec_name or "Transformer"
        raise ModelFormatError(f"{ct2_dir} is a CTranslate2 {kind} model, not Whisper")
    _refuse_quantized(header, ct2_dir)
    tokenizer_json = ct2_dir / "tokenizer.json"
    if not tokenizer_json.is_file():
        # faster-whisper would download it from the Hub, which this machine cannot reach.
        raise ModelFormatError(f"{ct2_dir} has no tokenizer.json; copy the one that came with the model")
    ct2_config = json.loads((ct2_dir / "config.json").read_text(encoding="utf-8"))

    # The converter stores identical tensors once and names the rest as aliases (the tied
    # projection, but also any two equal weights, e.g. untouched layer norms): read each stored
    # array once, then give every alias its own copy: shared memory would become tied parameters
    # in torch, which training would then update together.
    stored = load_arrays(ct2_dir / "model.bin", {v.name: v for v in header.variables.values()}.values())
    weights = _Weights({name: stored[v.name] if name == v.name else stored[v.name].copy()
                        for name, v in header.variables.items()}, ct2_dir / "model.bin")
    tokenizer = _tokenizer(tokenizer_json)
    model = _build_model(header, weights, ct2_config, tokenizer)
    config = model.config

    preprocessor = ct2_dir / "preprocessor_config.json"
    feature_extractor = (WhisperFeatureExtractor.from_pretrained(str(ct2_dir)) if preprocessor.is_file()
                         else WhisperFeatureExtractor(feature_size=config.num_mel_bins))
    if feature_extractor.feature_size != config.num_mel_bins:
        raise ModelFormatError(f"{preprocessor} asks for {feature_extractor.feature_size} mel bins but the "
                               f"model takes {config.num_mel_bins}")
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    WhisperProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer).save_pretrained(str(out_dir))
    # transformers 5 nests the feature extractor in processor_config.json, but faster-whisper
    # and the CTranslate2 export read the mel settings from preprocessor_config.json.
    feature_extractor.save_pretrained(str(out_dir))
