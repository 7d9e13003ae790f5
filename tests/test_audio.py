"""Audio sniffing and decoding for every format the assistant may store."""
from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from utils import audio
from utils.config import AudioConfig


def encoded(fmt: str, subtype: str | None = None, rate: int = 22050) -> bytes:
    t = np.arange(rate) / rate
    out = io.BytesIO()
    sf.write(out, 0.5 * np.sin(2 * np.pi * 440 * t), rate, format=fmt, subtype=subtype)
    return out.getvalue()


@pytest.mark.parametrize("fmt, kind, mime", [
    ("WAV", "wav", "audio/wav"), ("FLAC", "flac", "audio/flac"), ("OGG", "ogg", "audio/ogg"),
    ("MP3", "mp3", "audio/mpeg"),
])
def test_containers_are_detected_and_decoded(fmt, kind, mime):
    blob = encoded(fmt)
    assert audio.sniff(blob) == kind
    facts = audio.info(blob, AudioConfig())
    assert facts.mime == mime and facts.sample_rate == 22050
    assert facts.duration_s == pytest.approx(1.0, abs=0.06)
    data, mime_out = audio.playable(blob, AudioConfig())
    assert data == blob and mime_out == mime
    samples = audio.load_for_whisper(blob, AudioConfig())
    assert len(samples) == pytest.approx(16000, abs=1200) and samples.dtype == np.float32


@pytest.mark.parametrize("fmt, dtype, scale", [("s16le", "<i2", 32767), ("f32le", "<f4", 1.0),
                                               ("s32le", "<i4", 2**31 - 1)])
def test_raw_pcm_uses_configured_format(fmt, dtype, scale):
    cfg = AudioConfig(pcm_sample_rate=8000, pcm_sample_format=fmt)
    wave = 0.25 * np.sin(np.linspace(0, 100, 8000))
    blob = (wave * scale).astype(dtype).tobytes()
    assert audio.sniff(blob) == "pcm"
    samples, rate = audio.decode(blob, cfg)
    assert rate == 8000 and np.allclose(samples, wave, atol=1e-3)
    wav, mime = audio.playable(blob, cfg)
    decoded, wav_rate = sf.read(io.BytesIO(wav))
    assert mime == "audio/wav" and wav_rate == 8000 and np.allclose(decoded, wave, atol=1e-3)
    assert audio.info(blob, cfg).duration_s == pytest.approx(1.0)


def test_stereo_pcm_is_mixed_to_mono():
    cfg = AudioConfig(pcm_channels=2)
    frames = np.array([[1000, 3000]] * 1600, dtype="<i2")
    samples, _ = audio.decode(frames.tobytes(), cfg)
    assert samples.shape == (1600,) and np.allclose(samples, 2000 / 32768)


@pytest.mark.parametrize("blob", [b"", b"\x01", b"RIFF\x00\x00\x00\x00WAVEjunk", b"fLaC" + b"\x00" * 50,
                                  b"OggSgarbage"])
def test_undecodable_blobs_raise_audio_error(blob):
    with pytest.raises(audio.AudioError):
        audio.decode(blob, AudioConfig())
    with pytest.raises(audio.AudioError):
        audio.playable(blob, AudioConfig())


def test_a_header_over_a_few_bytes_of_junk_is_too_short_to_be_speech():
    """A RIFF/WAVE header over junk decodes as a few milliseconds: refused, so it is neither
    offered for review as playable nor trained on."""
    blob = io.BytesIO()
    sf.write(blob, np.zeros(64, dtype=np.float32), 16000, format="WAV", subtype="PCM_16")  # 4 ms
    for check in (audio.decode, audio.info, audio.playable, audio.load_for_whisper):
        with pytest.raises(audio.AudioError, match="lasts only 4 ms, too short to hold a word"):
            check(blob.getvalue(), AudioConfig())
    audio.decode(b"\x00\x10" * 1600, AudioConfig())  # 0.1 s of PCM is enough


def test_truncated_pcm_frame_is_dropped_not_fatal():
    samples, _ = audio.decode(b"\x00\x10" * 1600 + b"\x01", AudioConfig())
    assert len(samples) == 1600


def test_peaks_bucket_the_absolute_maximum():
    samples = np.array([0.1, -0.9, 0.2, 0.3, -0.1, 0.05], dtype=np.float32)
    assert audio.peaks(samples, 3) == [0.9, 0.3, 0.1]
    assert len(audio.peaks(samples, 100)) == 6


def test_raw_pcm_in_another_format_than_configured_is_named():
    """Issue: f32le blobs read as the configured s16le played as noise at twice their length, and were trained on."""
    wave = (0.3 * np.sin(np.linspace(0, 300, 16000)) * np.linspace(0, 1, 16000)).astype(np.float32)
    as_f32, as_s16 = wave.astype("<f4").tobytes(), (wave * 32767).astype("<i2").tobytes()
    for blob, configured, looks in ((as_f32, "s16le", "f32le"), (as_f32, "s32le", "f32le"), (as_s16, "f32le", "s16le")):
        cfg = AudioConfig(pcm_sample_format=configured)
        for read in (audio.info, audio.decode, audio.playable):
            with pytest.raises(audio.AudioError, match=rf"configured {configured}: its samples look like {looks}"):
                read(blob, cfg)
    # As configured, and digital silence (which could be anything), they read as before.
    assert audio.info(as_f32, AudioConfig(pcm_sample_format="f32le")).duration_s == pytest.approx(1.0)
    assert audio.info(as_s16, AudioConfig()).duration_s == pytest.approx(1.0)
    for configured in ("s16le", "f32le"):
        audio.info(bytes(32000), AudioConfig(pcm_sample_format=configured))
