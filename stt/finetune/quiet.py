"""Built-in sounds without speech: what every run checks the no-speech gate on.

A voice assistant hears more noise than words (a fan, mains hum, a beep, a click, a quiet room),
and faster-whisper skips a window when the model says no one speaks in it. Most reviewers mark
few such clips (Alt+N), so without these a run could not see a model that writes "You" on every
noise: the deploy rule compares the share of them on which the model writes words, before and
after (stt/finetune/deploy_rule.py). They are only measured, never trained on: trained on, built-in
synthetic sounds made runs worse (docs/performance.md, "Silence from more kinds than the reviewer
marked"). Made with numpy from a fixed seed, so every run hears the same clips.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from stt.finetune.data import SAMPLE_RATE, Sample

_FIRST_ID = -3_000_000
COUNT = 12


def _pink(rng: np.random.Generator, n: int) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    return np.fft.irfft(spectrum / np.sqrt(np.arange(1, len(spectrum) + 1)), n)


def _hum(rng: np.random.Generator, n: int) -> np.ndarray:
    t, base = np.arange(n) / SAMPLE_RATE, rng.choice([50.0, 60.0])
    return sum(np.sin(2 * np.pi * base * k * t) / k for k in (1, 2, 3, 5))


def _fan(rng: np.random.Generator, n: int) -> np.ndarray:
    smooth = np.convolve(rng.standard_normal(n), np.ones(24) / 24, mode="same")
    return smooth * (1 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * np.arange(n) / SAMPLE_RATE))


def _tone(rng: np.random.Generator, n: int) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    return sum(np.sin(2 * np.pi * rng.uniform(200, 1200) * t) for _ in range(rng.integers(1, 4)))


def _beeps(rng: np.random.Generator, n: int) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    return np.sin(2 * np.pi * rng.uniform(600, 2000) * t) * ((t * rng.uniform(1.5, 4)) % 1 < 0.3)


def _clicks(rng: np.random.Generator, n: int) -> np.ndarray:
    out = np.zeros(n)
    decay = np.exp(-np.arange(400) / 40.0)
    for at in rng.integers(0, n - 400, size=rng.integers(4, 20)):
        out[at:at + 400] += decay * rng.standard_normal(400)
    return out


_KINDS: list[tuple[str, Callable[[np.random.Generator, int], np.ndarray]]] = [
    ("white noise", lambda rng, n: rng.standard_normal(n)), ("pink noise", _pink),
    ("room tone", lambda rng, n: np.cumsum(rng.standard_normal(n))), ("mains hum", _hum), ("fan", _fan),
    ("tones", _tone), ("beeps", _beeps), ("clicks", _clicks), ("silence", lambda rng, n: np.zeros(n)),
    ("near silence", lambda rng, n: rng.standard_normal(n) * 1e-3),
]


_OWN_LEVEL = ("silence", "near silence")


def clips(count: int = COUNT, seed: int = 0) -> list[Sample]:
    """`count` clips of 1.5 to 4 s, the kinds taking turns, each at a level between 0.01 and 0.3."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        name, make = _KINDS[i % len(_KINDS)]
        n = int(rng.uniform(1.5, 4.0) * SAMPLE_RATE)
        sound = np.asarray(make(rng, n), dtype=np.float64)
        sound -= sound.mean()
        if name not in _OWN_LEVEL:
            sound *= rng.uniform(0.01, 0.3) / max(float(np.abs(sound).max()), 1e-9)
        out.append(Sample(_FIRST_ID - i, "", sound.astype(np.float32)))
    return out
