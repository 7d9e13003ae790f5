"""Real speech for tests: espeak-ng synthesizes a sentence, as the demo data does."""
from __future__ import annotations

import io

import numpy as np
import soundfile as sf

from utils.demo import synthesize


def espeak_16k_wav(text: str, voice: str = "en-us", speed: int = 160) -> bytes:
    """16 kHz mono 16-bit WAV of `text`, the assistant's most likely format; fails loudly without espeak-ng."""
    return synthesize(text, voice, speed)


def pcm_s16(text: str) -> bytes:
    """Headerless 16 kHz s16le PCM of the speech."""
    samples, _ = sf.read(io.BytesIO(espeak_16k_wav(text)), dtype="int16")
    return np.asarray(samples, dtype="<i2").tobytes()
