"""Audio that would take the server down or teach the model nonsense: bounded decoding, clips over 30 s."""
from __future__ import annotations

import io
import tracemalloc

import numpy as np
import soundfile as sf

from stt.runs import jobs, worker
from tests import tiny_whisper
from utils import audio, database
from utils.config import AudioConfig


def silent_flac(seconds: float, rate: int = 16000) -> bytes:
    """Compressed silence, written block by block: a few KB that decode to `seconds` of samples."""
    out = io.BytesIO()
    with sf.SoundFile(out, "w", samplerate=rate, channels=1, format="FLAC") as f:
        block = np.zeros(rate * 60, dtype=np.int16)
        for _ in range(int(seconds // 60)):
            f.write(block)
        f.write(np.zeros(int(rate * (seconds % 60)), dtype=np.int16))
    return out.getvalue()


def test_a_flac_bomb_is_refused_with_memory_bounded(client, conn):
    bomb = silent_flac(3 * 3600)  # three hours of silence: 173 M samples, 690 MB as float32
    assert len(bomb) < 3_000_000
    item = database.insert_item(conn, "silence", bomb)
    tracemalloc.start()
    try:
        responses = [client.get(f"/api/data/{item}/{what}") for what in ("peaks", "audio")]
        with_model = client.post(f"/api/data/{item}/transcribe")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    for response in responses:
        assert response.status_code == 422
        assert "longer than the 5.0 min" in response.get_json()["message"]
        assert "BytesIO" not in response.get_json()["message"]
    assert with_model.status_code in (409, 422)  # no model here (409), or the audio refused
    assert peak < 120 * 2**20, f"{peak / 2**20:.0f} MB"  # the default limit's worth of mono float32, not 690 MB


def test_the_header_is_not_trusted():
    """Decoding stops at the limit however many frames the file holds, so a lying header cannot inflate it."""
    cfg = AudioConfig(max_duration_s=90)
    try:
        audio.decode(silent_flac(150), cfg)
    except audio.AudioError as exc:
        assert "longer than the 90 s" in str(exc)
    else:
        raise AssertionError("a 150 s clip passed a 90 s limit")
    samples, rate = audio.decode(silent_flac(60), cfg)
    assert rate == 16000 and len(samples) == 60 * 16000


def test_bytes_too_few_to_be_audio_are_refused_by_every_audio_endpoint(client, conn):
    item = database.insert_item(conn, "junk", b"hello world")
    for what in ("audio", "peaks"):
        assert client.get(f"/api/data/{item}/{what}").status_code == 422


def test_clips_over_30_seconds_are_left_out_of_training_and_stop_counting(conn, cfg, speech, fake_engine, client):
    tiny_whisper.build(cfg.model.path)
    for i in range(6):
        database.insert_item(conn, f"reviewed sentence {i}", speech["weather"], is_reviewed=1)
    long_clip = audio.to_wav(np.zeros(45 * 16000, dtype=np.float32), 16000)
    long_item = database.insert_item(conn, "a long recording", long_clip, is_reviewed=1)
    run = worker.run(jobs.start_record(cfg)["job_id"], cfg)
    assert run["state"] == "done", run["message"]
    assert long_item not in fake_engine.seen.train + fake_engine.seen.heldout
    assert long_item in run["result"]["skipped_items"] or long_item not in jobs.plan(conn, cfg).train
    assert long_item not in jobs.plan(conn, cfg).train  # found out once, then no longer pending
    assert client.get(f"/api/data/{long_item}").get_json()["duration_s"] == 45.0


def test_a_long_raw_pcm_row_is_refused_from_its_length(client, conn):
    """Issue: four /peaks requests on a 100 MB raw row took the server from 0.8 to 1.47 GB, though each got 422."""
    raw = (np.random.default_rng(0).integers(-2000, 2000, 16000 * 400, dtype=np.int16)).tobytes()  # 400 s, 12.8 MB
    item = database.insert_item(conn, "a very long recording", raw)
    tracemalloc.start()
    try:
        responses = [client.get(f"/api/data/{item}/{what}") for what in ("peaks", "audio")]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert all(r.status_code == 422 and "longer than the 5.0 min" in r.get_json()["message"] for r in responses)
    assert peak < 3 * len(raw), f"{peak / 2**20:.0f} MB"  # the row itself and a copy, never its float conversions
