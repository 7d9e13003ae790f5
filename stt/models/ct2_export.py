"""Export a fine-tuned Hugging Face Whisper model for faster-whisper.

The assistant runs faster-whisper, which only loads CTranslate2 folders, so a
trained model is only useful once converted back. CTranslate2's own converter
does the work; this module picks the files to carry along and lets the export
match the precision of the model it replaces.
"""
from __future__ import annotations

from pathlib import Path

from stt.models.ct2_binary import read_header
from stt.models.model_format import HUGGINGFACE, ModelFormatError, detect_format

# faster-whisper reads the tokenizer from tokenizer.json (it would otherwise fetch it from
# the Hub) and the number of mel bins from preprocessor_config.json (128 for large-v3).
_CARRIED_FILES = ("tokenizer.json", "preprocessor_config.json")
# The representative weights whose dtype tells the model's precision: a linear layer in
# the first encoder block exists in every Whisper size and is quantized whenever anything is.
_PROBE_WEIGHT = "encoder/layer_0/self_attention/linear_0/weight"
_PROBE_FLOAT = "encoder/layer_0/self_attention/linear_0/bias"


def ct2_quantization(ct2_dir: Path) -> str:
    """The `quantization` value that reproduces the precision of the CTranslate2 model in `ct2_dir`.

    Lets the exporter replace a deployed float16 (or int8) model with one of the
    same size and speed without the user having to know which one they had.
    Only the header of model.bin is read.
    """
    header = read_header(Path(ct2_dir) / "model.bin")
    try:
        weight, other = header.variables[_PROBE_WEIGHT].dtype, header.variables[_PROBE_FLOAT].dtype
    except KeyError as exc:
        raise ModelFormatError(f"{ct2_dir} is not a CTranslate2 Whisper model: it has no {exc.args[0]}") from None
    if weight == "int8":
        # int8 models keep their non-quantized tensors in the compute float type they were
        # made for; float32 is plain "int8" in CTranslate2's naming.
        return "int8" if other == "float32" else f"int8_{other}"
    return weight


def export_ct2(hf_dir: Path, out_dir: Path, quantization: str | None) -> None:
    """Convert the Hugging Face Whisper model in `hf_dir` into a faster-whisper folder at `out_dir`.

    `quantization` is any CTranslate2 quantization ("float16", "int8", ...) or None to keep
    the weights' own dtype. An existing `out_dir` is overwritten, since re-exporting after
    more training is the normal case.
    """
    # Imported here, not at the top: the converter pulls in transformers and torch, and the web
    # app reads ct2_quantization (for `model info`) without ever loading them.
    from ctranslate2.converters import TransformersConverter

    hf_dir, out_dir = Path(hf_dir), Path(out_dir)
    if detect_format(hf_dir) != HUGGINGFACE:
        raise ModelFormatError(f"{hf_dir} is already a CTranslate2 model; export needs a Hugging Face one")
    carried = [name for name in _CARRIED_FILES if (hf_dir / name).is_file()]
    converter = TransformersConverter(str(hf_dir), copy_files=carried)
    converter.convert(str(out_dir), quantization=quantization, force=True)
