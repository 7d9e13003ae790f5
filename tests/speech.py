"""Real speech for tests: espeak-ng synthesizes a sentence into WAV bytes."""
from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from utils.audio import load_for_whisper, to_wav
from utils.config import AudioConfig


def espeak_wav(text: str, voice: str = "en-us", speed: int = 160) -> bytes:
    """espeak-ng's own WAV (22.05 kHz) for `text`; fails loudly when espeak-ng is not installed."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed: run run_tests.sh, which installs it")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "speech.wav"
        subprocess.run([exe, "-v", voice, "-s", str(speed), "-w", str(out), text], check=True, capture_output=True)
        return out.read_bytes()


def espeak_16k_wav(text: str, **kwargs) -> bytes:
    """The same speech resampled to 16 kHz mono 16-bit, the assistant's most likely format."""
    samples = load_for_whisper(espeak_wav(text, **kwargs), AudioConfig())
    return to_wav(samples, 16000)


def pcm_s16(text: str) -> bytes:
    """Headerless 16 kHz s16le PCM of the speech."""
    samples, _ = sf.read(io.BytesIO(espeak_16k_wav(text)), dtype="int16")
    return np.asarray(samples, dtype="<i2").tobytes()
