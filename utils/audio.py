"""Audio blobs as the assistant stored them: sniff the container, decode, make playable.

The assistant may store WAV, FLAC, OGG, MP3 or headerless PCM. Containers are
recognised by their magic bytes; anything else is taken as raw PCM in the
format `[audio]` of the config describes, since PCM has no header to check.
"""
from __future__ import annotations

import io
import re
import struct
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

from utils.config import AudioConfig

WHISPER_RATE = 16000
# Whisper hears 30 s at a time: a longer clip cannot be trained on whole (its transcript
# would be cut mid-sentence), so training leaves it out and the editor says so.
WHISPER_WINDOW_S = 30.0
# Decoding reads this many frames at a time and keeps only their mono mix, so memory is
# bounded by the duration limit, not by what a compressed file claims or inflates to.
_BLOCK_FRAMES = 65536
# Shorter than the shortest word: such a blob is a cut-off or damaged recording (a header
# over a few bytes of junk decodes as a few milliseconds), not something to review or train on.
MIN_DURATION_S = 0.1

MIME = {"wav": "audio/wav", "flac": "audio/flac", "ogg": "audio/ogg", "mp3": "audio/mpeg", "pcm": "audio/wav"}
PCM_DTYPES = {"s16le": "<i2", "s32le": "<i4", "f32le": "<f4", "u8": "u1"}
PCM_SUBTYPES = {"s16le": (1, 16), "s32le": (1, 32), "f32le": (3, 32), "u8": (1, 8)}


class AudioError(ValueError):
    """The blob cannot be decoded as audio; the message says why, for a 422."""


def _why(exc: Exception) -> str:
    """libsndfile's reason without the in-memory file's repr ("Error opening <_io.BytesIO object at 0x…>: ")."""
    return (re.sub(r"(Error opening )?<_io\.BytesIO object at 0x[0-9a-fA-F]+>:?\s*", "", str(exc)).strip()
            or "unknown error")


@dataclass
class AudioInfo:
    container: str
    mime: str
    sample_rate: int
    channels: int
    duration_s: float


def sniff(blob: bytes) -> str:
    """The container by its magic bytes, or "pcm" when there is none."""
    if len(blob) >= 12 and blob[:4] in (b"RIFF", b"RF64") and blob[8:12] == b"WAVE":
        return "wav"
    if blob[:4] == b"fLaC":
        return "flac"
    if blob[:4] == b"OggS":
        return "ogg"
    # ID3 tag, or an MPEG audio frame sync (11 set bits) with layer III.
    if blob[:3] == b"ID3" or (len(blob) >= 2 and blob[0] == 0xFF and (blob[1] & 0xE6) == 0xE2):
        return "mp3"
    return "pcm"


def pcm_settings(cfg: AudioConfig) -> str:
    """The settings raw PCM is read with, as one tag: facts measured under other settings are stale."""
    return f"{cfg.pcm_sample_format}/{cfg.pcm_sample_rate}/{cfg.pcm_channels}"


# Raw PCM bytes read to judge their format: a few seconds of audio is plenty, and bounds the cost.
_SNIFF_BYTES = 1 << 20


def _check_pcm_format(blob: bytes, cfg: AudioConfig) -> None:
    """Refuse raw PCM that is implausible as configured, naming the format it looks like: f32le read as
    s16le plays as noise at twice its length, and would be trained on as such.

    Real float audio is all finite and within a few times full scale; integer PCM read as floats gets
    its exponents from sample bits (huge, tiny or NaN values). Quiet float audio (RMS under 1e-3) says
    nothing either way.
    """
    window = blob[:_SNIFF_BYTES]
    floats = np.frombuffer(window[:len(window) - len(window) % 4], dtype="<f4")
    plausible = bool(np.isfinite(floats).all()) and float(np.abs(floats).max(initial=0.0)) <= 4.0
    loud = plausible and floats.size >= 160 and float(np.sqrt(np.mean(np.square(floats, dtype=np.float64)))) >= 1e-3
    configured = cfg.pcm_sample_format
    if configured != "f32le" and loud:
        guess = "f32le"
    elif configured == "f32le" and not plausible and len(blob) >= 640:
        guess = "s16le"
    else:
        return
    raise AudioError(f"the raw PCM does not look like the configured {configured}: its samples look like {guess}. "
                     f"If the assistant writes {guess}, set [audio].pcm_sample_format = \"{guess}\"; until the "
                     "setting fits, the clip is left out of training")


def _pcm_array(blob: bytes, cfg: AudioConfig) -> np.ndarray:
    _check_pcm_format(blob, cfg)
    dtype = np.dtype(PCM_DTYPES[cfg.pcm_sample_format])
    frame = dtype.itemsize * cfg.pcm_channels
    if len(blob) < frame:
        raise AudioError("the audio is empty" if not blob else "the audio is too short to hold one PCM frame")
    usable = len(blob) - len(blob) % frame  # a truncated last frame is dropped, not fatal
    if usable // frame > cfg.max_duration_s * cfg.pcm_sample_rate:
        # Refused from its length before any conversion: a 100 MB row must not cost its float copies.
        raise _too_long(usable // frame / cfg.pcm_sample_rate, cfg)
    data = np.frombuffer(blob[:usable], dtype=dtype).reshape(-1, cfg.pcm_channels)
    if dtype.kind == "f":
        return data.astype(np.float32)
    if dtype.kind == "u":
        return (data.astype(np.float32) - 128.0) / 128.0
    return data.astype(np.float32) / float(2 ** (8 * dtype.itemsize - 1))


def _check_length(frames: int, rate: int, cfg: AudioConfig) -> None:
    if frames < MIN_DURATION_S * rate:
        raise AudioError(f"the audio lasts only {1000 * frames / rate:.0f} ms, too short to hold a word: "
                         "the recording is probably cut off or damaged")
    if frames > cfg.max_duration_s * rate:
        raise _too_long(frames / rate, cfg)


def _too_long(seconds: float, cfg: AudioConfig) -> AudioError:
    return AudioError(f"the audio lasts {_duration(seconds)}, longer than the {_duration(cfg.max_duration_s)} "
                      "this app decodes ([audio].max_duration_s): it is not opened, to keep memory bounded")


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min" if seconds >= 120 \
        else f"{seconds:.0f} s"


def info(blob: bytes, cfg: AudioConfig) -> AudioInfo:
    """Duration and format without decoding samples where the container allows."""
    kind = sniff(blob)
    if kind == "pcm":
        frames = len(_pcm_array(blob, cfg))
        _check_length(frames, cfg.pcm_sample_rate, cfg)
        return AudioInfo("pcm", MIME["pcm"], cfg.pcm_sample_rate, cfg.pcm_channels, frames / cfg.pcm_sample_rate)
    try:
        meta = sf.info(io.BytesIO(blob))
    except (sf.LibsndfileError, RuntimeError, EOFError) as exc:
        raise AudioError(f"the {kind.upper()} audio cannot be read: {_why(exc)}") from None
    if meta.samplerate <= 0 or meta.frames <= 0:
        raise AudioError(f"the {kind.upper()} audio holds no samples")
    _check_length(meta.frames, meta.samplerate, cfg)
    return AudioInfo(kind, MIME[kind], meta.samplerate, meta.channels, meta.frames / meta.samplerate)


def decode(blob: bytes, cfg: AudioConfig) -> tuple[np.ndarray, int]:
    """Mono float32 samples in [-1, 1] and their sample rate."""
    kind = sniff(blob)
    if kind == "pcm":
        data, rate = _pcm_array(blob, cfg), cfg.pcm_sample_rate
        if data.size == 0:
            raise AudioError("the audio holds no samples")
        _check_length(len(data), int(rate), cfg)
        return np.ascontiguousarray(data.mean(axis=1), dtype=np.float32), int(rate)
    try:
        mono, rate = _read_bounded(blob, cfg)
    except (sf.LibsndfileError, RuntimeError, EOFError) as exc:
        raise AudioError(f"the {kind.upper()} audio cannot be decoded: {_why(exc)}") from None
    if mono.size == 0:
        raise AudioError("the audio holds no samples")
    _check_length(len(mono), rate, cfg)
    return mono, rate


def _read_bounded(blob: bytes, cfg: AudioConfig) -> tuple[np.ndarray, int]:
    """Decode block by block, keeping each block's mono mix, and stop once past the duration limit.

    The header's frame count is not trusted: a 2 MB FLAC of silence can claim
    anything and inflate to gigabytes. Peak memory is the limit's worth of mono
    float32 plus one block, whatever the file says or holds.
    """
    with sf.SoundFile(io.BytesIO(blob)) as f:
        rate = int(f.samplerate)
        if rate <= 0:
            raise AudioError("the audio has no sample rate")
        limit = int(cfg.max_duration_s * rate)
        parts, kept = [], 0
        for block in f.blocks(blocksize=_BLOCK_FRAMES, dtype="float32", always_2d=True):
            parts.append(block.mean(axis=1, dtype=np.float32))
            kept += len(block)
            if kept > limit:
                raise _too_long(kept / rate, cfg)
    return (np.concatenate(parts) if parts else np.zeros(0, np.float32)), rate


def load_for_whisper(blob: bytes, cfg: AudioConfig) -> np.ndarray:
    """Mono 16 kHz float32, what Whisper's feature extractor expects."""
    samples, rate = decode(blob, cfg)
    if rate != WHISPER_RATE:
        samples = soxr.resample(samples, rate, WHISPER_RATE).astype(np.float32)
    return samples


def playable(blob: bytes, cfg: AudioConfig) -> tuple[bytes, str]:
    """Bytes a browser's <audio> can play, and their MIME type.

    Containers pass through untouched; raw PCM gets a WAV header in front of the
    same bytes (no re-encoding), so what the reviewer hears is what was stored.
    """
    kind = sniff(blob)
    if kind != "pcm":
        info(blob, cfg)  # refuse undecodable containers here rather than in the browser
        return blob, MIME[kind]
    _check_pcm_format(blob, cfg)
    fmt_tag, bits = PCM_SUBTYPES[cfg.pcm_sample_format]
    block = cfg.pcm_channels * bits // 8
    usable = len(blob) - len(blob) % block
    if not usable:
        raise AudioError("the audio is empty" if not blob else "the audio is too short to hold one PCM frame")
    # As /peaks does (bytes too few to be speech, or too long, are 422), before the bytes are copied.
    _check_length(usable // block, cfg.pcm_sample_rate, cfg)
    data = blob[:usable]
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
    header += b"fmt " + struct.pack(
        "<IHHIIHH", 16, fmt_tag, cfg.pcm_channels, cfg.pcm_sample_rate, cfg.pcm_sample_rate * block, block, bits
    )
    header += b"data" + struct.pack("<I", len(data))
    return header + data, MIME["pcm"]


def peaks(samples: np.ndarray, buckets: int) -> list[float]:
    """Max absolute amplitude per bucket, for drawing a waveform the width of the player."""
    buckets = max(1, min(buckets, len(samples)))
    edges = np.linspace(0, len(samples), buckets + 1).astype(np.int64)
    return [round(float(v), 4) for v in np.maximum.reduceat(np.abs(samples), edges[:-1])]


def to_wav(samples: np.ndarray, rate: int) -> bytes:
    """16-bit WAV bytes, how the demo data and tests store clips (as the assistant most likely does)."""
    out = io.BytesIO()
    sf.write(out, samples, rate, format="WAV", subtype="PCM_16")
    return out.getvalue()
