"""The items API against a real SQLite file holding real WAV, raw PCM and corrupt blobs."""
from __future__ import annotations

import base64
import io
import json

import pytest
import soundfile as sf

from utils import database, training_sets


def test_health_reports_database_and_model(client, cfg):
    body = client.get("/api/health").get_json()
    assert body["status"] == "ok"
    assert body["database"] == {"path": str(cfg.database.path), "ok": True}
    assert body["model"]["present"] is False and "does not exist" in body["model"]["message"]


def test_health_says_a_model_that_cannot_load_is_not_present(client, cfg):
    from tests import tiny_whisper

    tiny_whisper.build(cfg.model.path)
    assert client.get("/api/health").get_json()["model"] == {"path": str(cfg.model.path), "present": True}
    config = json.loads((cfg.model.path / "config.json").read_text())
    (cfg.model.path / "config.json").write_text(json.dumps({**config, "decoder_layers": 400}))
    model = client.get("/api/health").get_json()["model"]
    assert not model["present"] and "decoder_layers 400 in config.json" in model["message"]
    (cfg.model.path / "config.json").write_text(json.dumps(config))
    (cfg.model.path / "model.safetensors").write_bytes(b"not weights at all")
    model = client.get("/api/health").get_json()["model"]
    assert not model["present"] and model["message"]


def test_health_remembers_a_model_that_failed_to_load(client, cfg, conn, speech):
    cfg.model.path.mkdir(parents=True)
    (cfg.model.path / "config.json").write_text("{}")  # a CTranslate2 folder whose weights are broken
    (cfg.model.path / "model.bin").write_bytes(b"\0" * 64)
    assert client.get("/api/health").get_json()["model"]["present"]  # not known before something loads it
    item = database.insert_item(conn, "hello", speech["hello"])
    assert client.post(f"/api/data/{item}/transcribe").status_code >= 400
    model = client.get("/api/health").get_json()["model"]
    assert not model["present"] and "cannot be loaded" in model["message"]


def test_stats_counts_each_flag(client, seeded):
    body = client.get("/api/data/stats").get_json()
    # 6 items: 2 reviewed (one trained); the untrained reviewed one is held out
    # for evaluation (heldout_min=3 keeps up to 3 aside), so none is pending.
    assert body["total"] == 6
    assert body["reviewed"] == 2
    assert body["trained"] == 1
    assert body["heldout"] == 1
    assert body["pending_training"] == 0
    assert body["unreviewed"] == 4


def test_stats_pending_excludes_only_heldout(client, conn, speech):
    for i in range(10):
        database.insert_item(conn, f"sentence {i}", speech["hello"], is_reviewed=1)
    body = client.get("/api/data/stats").get_json()
    assert body["heldout"] == 3
    assert body["pending_training"] == 7
    # What the held-out WER rests on ("sentence N": two words each), for the dashboard's warning.
    assert body["heldout_words"] == 6


def test_the_list_says_which_items_are_held_out_or_checks(client, conn, speech):
    """Issue 34: held-out items looked like plain "Reviewed" in the list."""
    ids = [database.insert_item(conn, f"sentence {i}", speech["hello"], is_reviewed=1) for i in range(4)]
    training_sets.keep_heldout(conn, [ids[0]])  # what a run does with the items it holds out
    assert client.put(f"/api/data/{ids[1]}", json={"regression": True}).status_code == 200
    listed = {i["id"]: (i["held_out"], i["regression"]) for i in client.get("/api/data").get_json()}
    assert listed == {ids[0]: (True, 0), ids[1]: (False, 1), ids[2]: (False, 0), ids[3]: (False, 0)}
    assert client.get(f"/api/data/{ids[0]}?audio=0").get_json()["held_out"] is True


def test_regression_items_are_set_aside_from_training(client, conn, speech):
    ids = [database.insert_item(conn, f"sentence {i}", speech["hello"], is_reviewed=1) for i in range(10)]
    item = client.get(f"/api/data/{ids[-1]}?audio=0")
    assert item.get_json()["regression"] == 0
    flagged = client.put(f"/api/data/{ids[-1]}", json={"regression": True}, headers={"If-Match": item.headers["ETag"]})
    assert flagged.status_code == 200 and flagged.get_json()["regression"] == 1
    assert flagged.headers["ETag"] != item.headers["ETag"], "a reviewer holding the old version must be told"
    body = client.get("/api/data/stats").get_json()
    assert body["regression"] == 1 and body["pending_training"] + body["heldout"] == 9
    assert ids[-1] not in training_sets.heldout_ids(conn, 0.1, 3)
    # Flagging is idempotent, and unflagging puts the item back in the pool.
    assert client.put(f"/api/data/{ids[-1]}", json={"regression": 1}).get_json()["regression"] == 1
    assert client.put(f"/api/data/{ids[-1]}", json={"regression": False}).get_json()["regression"] == 0
    body = client.get("/api/data/stats").get_json()
    assert body["regression"] == 0 and body["pending_training"] + body["heldout"] == 10
    bad = client.put(f"/api/data/{ids[-1]}", json={"regression": "yes"})
    assert bad.status_code == 400 and bad.get_json()["field"] == "regression"


def test_items_without_words_or_playable_audio_are_never_pending(client, conn, seeded):
    before = client.get("/api/data/stats").get_json()
    for key in ("empty", "corrupt"):
        client.get(f"/api/data/{seeded[key]}")  # opening it measures the audio, as the editor does
        client.put(f"/api/data/{seeded[key]}", json={"is_reviewed": True})
    after = client.get("/api/data/stats").get_json()
    assert after["reviewed"] == before["reviewed"] + 2
    assert after["pending_training"] + after["heldout"] == before["pending_training"] + before["heldout"]
    assert seeded["empty"] not in training_sets.heldout_ids(conn, 1.0, 10)
    assert seeded["corrupt"] not in training_sets.heldout_ids(conn, 1.0, 10)
    # Blanks the assistant may write (newline, tab, no-break space) are no words either, in SQL and in Python.
    for blank in ("\n", "\t ", "\u00a0"):
        item_id = database.insert_item(conn, blank, b"", is_reviewed=1)
        assert not training_sets.has_text(blank) and item_id not in training_sets.heldout_ids(conn, 1.0, 100)
    assert client.get("/api/data/stats").get_json()["pending_training"] == after["pending_training"]


def test_a_trained_item_cannot_become_a_regression_check(client, seeded):
    response = client.put(f"/api/data/{seeded['trained']}", json={"regression": True})
    assert response.status_code == 409 and response.get_json()["error"] == "already_trained"
    assert client.get(f"/api/data/{seeded['trained']}?audio=0").get_json()["regression"] == 0
    # Correcting its transcript makes it untrained again, so both in one request are fine.
    body = client.put(f"/api/data/{seeded['trained']}", json={"transcript": "corrected", "regression": True}).get_json()
    assert body["regression"] == 1 and body["is_trained"] == 0


def test_list_returns_every_item_without_audio(client, seeded):
    response = client.get("/api/data")
    items = response.get_json()
    assert response.headers["X-Total-Count"] == "6"
    assert [i["id"] for i in items] == sorted(seeded.values())
    assert set(items[0]) == {"id", "transcript", "is_reviewed", "is_trained", "timestamp", "duration_s", "problem",
                             "no_speech", "unusable", "audio_error", "regression", "held_out"}


@pytest.mark.parametrize("query, expected", [
    ("reviewed=true", {"reviewed", "trained"}),
    ("reviewed=0", {"wav", "pcm", "corrupt", "empty"}),
    ("trained=1", {"trained"}),
    ("reviewed=1&trained=false", {"reviewed"}),
    ("q=KITCHEN", {"pcm"}),
    ("q=%25", set()),  # a literal percent sign is not a wildcard
])
def test_list_filters(client, seeded, query, expected):
    items = client.get(f"/api/data?{query}").get_json()
    assert {i["id"] for i in items} == {seeded[k] for k in expected}


@pytest.mark.parametrize("query", ["reviewed=maybe", "trained=2", "limit=0", "limit=x", "offset=-1",
                                   "sort=audio_blob", "order=sideways", "limit=5000"])
def test_list_rejects_bad_parameters(client, seeded, query):
    response = client.get(f"/api/data?{query}")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_parameter"


def test_list_pages_and_sorts(client, seeded):
    response = client.get("/api/data?limit=2&offset=2&sort=id&order=desc")
    ids = sorted(seeded.values(), reverse=True)
    assert [i["id"] for i in response.get_json()] == ids[2:4]
    assert response.headers["X-Total-Count"] == "6"


def test_item_has_audio_and_facts(client, seeded, speech):
    response = client.get(f"/api/data/{seeded['wav']}")
    body = response.get_json()
    assert base64.b64decode(body["audio"]) == speech["hello"]
    assert body["audio_mime"] == "audio/wav"
    assert body["sample_rate"] == 16000
    assert 1.0 < body["duration_s"] < 5.0
    assert body["audio_error"] is None
    assert response.headers["ETag"] == f'"{body["version"]}"'
    assert body["next_id"] == seeded["reviewed"] and body["prev_id"] is None
    assert body["next_unreviewed_id"] == seeded["pcm"]


def test_item_without_audio_payload(client, seeded):
    body = client.get(f"/api/data/{seeded['pcm']}?audio=0").get_json()
    assert "audio" not in body
    assert body["audio_mime"] == "audio/wav"  # raw PCM is served as WAV
    assert body["sample_rate"] == 16000


@pytest.mark.parametrize("path", ["/api/data/999999", "/api/data/-3", "/api/data/999999/audio",
                                  "/api/data/999999/peaks"])
def test_unknown_id_is_404_json(client, seeded, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_non_numeric_id_is_404_json(client):
    response = client.get("/api/data/abc")
    assert response.status_code == 404
    assert response.is_json


def test_put_updates_transcript_and_flag(client, conn, seeded):
    response = client.put(f"/api/data/{seeded['wav']}", json={"transcript": "Hello there, how are you today?",
                                                              "is_reviewed": True})
    assert response.status_code == 200
    body = response.get_json()
    assert body["transcript"] == "Hello there, how are you today?" and body["is_reviewed"] == 1
    row = conn.execute("SELECT transcript, is_reviewed FROM s2s_training_data WHERE id=?", (seeded["wav"],)).fetchone()
    assert tuple(row) == ("Hello there, how are you today?", 1)


def test_put_either_field_alone(client, seeded):
    assert client.put(f"/api/data/{seeded['pcm']}", json={"is_reviewed": 1}).get_json()["is_reviewed"] == 1
    body = client.put(f"/api/data/{seeded['pcm']}", json={"transcript": "x"}).get_json()
    assert body["transcript"] == "x" and body["is_reviewed"] == 1


@pytest.mark.parametrize("payload, error", [
    (b"", "invalid_body"),
    (b"{not json", "invalid_body"),
    (b"[1, 2]", "invalid_body"),
    (b"{}", "invalid_body"),
    (b'{"transcript": 5}', "invalid_field"),
    (b'{"transcript": null, "is_reviewed": "yes"}', "invalid_field"),
    (b'{"is_reviewed": 2}', "invalid_field"),
    (b'{"transcript": "ok", "is_reviewed": null}', "invalid_field"),  # null is not "unchanged": leave it out
    (b'{"regression": "yes"}', "invalid_field"),
    (b'{"transcript": "bell\\u0007"}', "invalid_field"),
    (b'{"transcript": "\\ud800"}', "invalid_field"),
])
def test_put_rejects_bad_bodies_and_changes_nothing(client, conn, seeded, payload, error):
    before = database.get_item(conn, seeded["wav"])
    response = client.put(f"/api/data/{seeded['wav']}", data=payload, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"] == error
    assert database.get_item(conn, seeded["wav"]) == before


def test_put_rejects_overlong_transcript(client, seeded):
    response = client.put(f"/api/data/{seeded['wav']}", json={"transcript": "a" * 10_001})
    assert response.status_code == 400
    assert "10000" in response.get_json()["message"]


def test_put_refuses_huge_body(client, seeded):
    response = client.put(f"/api/data/{seeded['wav']}", json={"transcript": "a" * 1_000_000})
    assert response.status_code == 413
    assert response.is_json


def test_if_match_prevents_lost_update(client, conn, seeded):
    item_id = seeded["wav"]
    etag = client.get(f"/api/data/{item_id}?audio=0").headers["ETag"]
    # Someone else saves first.
    assert client.put(f"/api/data/{item_id}", json={"transcript": "theirs"},
                      headers={"If-Match": etag}).status_code == 200
    # Our save, based on the old version, is refused with their version attached.
    response = client.put(f"/api/data/{item_id}", json={"transcript": "mine"}, headers={"If-Match": etag})
    assert response.status_code == 412
    body = response.get_json()
    assert body["error"] == "version_conflict" and body["current"]["transcript"] == "theirs"
    assert database.get_item(conn, item_id)["transcript"] == "theirs"
    # Retrying with the current version succeeds.
    ok = client.put(f"/api/data/{item_id}", json={"transcript": "mine"}, headers={"If-Match": response.headers["ETag"]})
    assert ok.status_code == 200 and ok.get_json()["transcript"] == "mine"


def test_correcting_a_trained_item_makes_it_pending_again(client, seeded):
    body = client.put(f"/api/data/{seeded['trained']}", json={"transcript": "already trained, corrected"}).get_json()
    assert body["is_trained"] == 0 and body["is_reviewed"] == 1


def test_audio_endpoint_serves_wav_with_ranges(client, seeded, speech):
    url = f"/api/data/{seeded['wav']}/audio"
    full = client.get(url)
    assert full.status_code == 200 and full.mimetype == "audio/wav" and full.data == speech["hello"]
    part = client.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.data == speech["hello"][100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(speech['hello'])}"


def test_raw_pcm_is_wrapped_as_playable_wav(client, seeded, speech):
    data = client.get(f"/api/data/{seeded['pcm']}/audio").data
    samples, rate = sf.read(io.BytesIO(data), dtype="int16")
    assert rate == 16000
    assert samples.tobytes() == speech["pcm"]


def test_peaks_for_waveform(client, seeded):
    body = client.get(f"/api/data/{seeded['wav']}/peaks?buckets=100").get_json()
    assert len(body["peaks"]) == 100
    assert all(0 <= p <= 1 for p in body["peaks"]) and max(body["peaks"]) > 0.1
    assert body["sample_rate"] == 16000


@pytest.mark.parametrize("name", ["corrupt", "empty"])
def test_undecodable_audio_is_422_but_item_still_lists_and_edits(client, seeded, name):
    item_id = seeded[name]
    for suffix in ("audio", "peaks"):
        response = client.get(f"/api/data/{item_id}/{suffix}")
        assert response.status_code == 422
        assert response.get_json()["error"] == "undecodable_audio"
    body = client.get(f"/api/data/{item_id}").get_json()
    assert body["audio_error"] and body["audio_mime"] is None
    assert client.put(f"/api/data/{item_id}", json={"transcript": "fixed", "is_reviewed": True}).status_code == 200
    assert item_id in {i["id"] for i in client.get("/api/data").get_json()}


def test_next_unreviewed_walks_the_queue_oldest_first(client, seeded):
    assert client.get("/api/data/next").get_json() == {"id": seeded["wav"]}
    assert client.get(f"/api/data/next?after={seeded['wav']}").get_json() == {"id": seeded["pcm"]}
    # After the last unreviewed item it wraps to the oldest.
    assert client.get(f"/api/data/next?after={seeded['trained']}").get_json() == {"id": seeded["wav"]}
    for key in ("wav", "pcm", "corrupt", "empty"):
        client.put(f"/api/data/{seeded[key]}", json={"is_reviewed": True})
    assert client.get("/api/data/next").get_json() == {"id": None}


def test_null_transcript_from_the_assistant_is_served(client, seeded):
    body = client.get(f"/api/data/{seeded['empty']}?audio=0").get_json()
    assert body["transcript"] is None


def test_pages_render(client):
    for path in ("/", "/editor"):
        response = client.get(path)
        assert response.status_code == 200 and b"<html" in response.data.lower()


def test_unknown_api_path_and_method_are_json(client):
    assert client.get("/api/nothing").status_code == 404
    response = client.delete("/api/data/1")
    assert response.status_code == 405 and response.get_json()["error"] == "method_not_allowed"


def _wav(seconds: float) -> bytes:
    import io

    import numpy as np
    import soundfile

    out = io.BytesIO()
    soundfile.write(out, np.zeros(int(16000 * seconds), dtype=np.float32), 16000, format="WAV", subtype="PCM_16")
    return out.getvalue()


def test_every_reviewed_item_is_accounted_for(client, conn, speech):
    """Issue: of 29 reviewed items 7 appeared nowhere (too long, no audio, no words) and the dashboard said only
    "held out or already trained"."""
    for i in range(6):
        database.insert_item(conn, f"usable sentence {i}", speech["hello"], is_reviewed=1)
    database.insert_item(conn, "learned", speech["hello"], is_reviewed=1, is_trained=1)
    long_one = database.insert_item(conn, "a very long clip", _wav(31), is_reviewed=1)
    silent = [database.insert_item(conn, "no audio here", blob, is_reviewed=1) for blob in (None, b"")]
    broken = database.insert_item(conn, "broken audio", b"RIFF\x00\x00\x00\x00WAVEjunkjunk", is_reviewed=1)
    wordless = [database.insert_item(conn, text, speech["hello"], is_reviewed=1) for text in (None, " ")]
    # Issue 32: text that is not UTF-8 (or not text at all) is unusable with its reason, never pending forever.
    not_text = [database.insert_item(conn, "overwritten below", speech["hello"], is_reviewed=1) for _ in range(2)]
    conn.execute("UPDATE s2s_training_data SET transcript = CAST(? AS TEXT) WHERE id = ?",
                 (b"caf\xe9 ol\xe9", not_text[0]))
    conn.execute("UPDATE s2s_training_data SET transcript = ? WHERE id = ?", (b"\x00\x01blob", not_text[1]))
    database.insert_item(conn, "not reviewed", None)
    database.insert_item(conn, "caf\u00e9 is fine", speech["hello"], is_reviewed=1)  # valid beyond ASCII: usable
    # Never opened in the editor: the stats measure the audio before counting anything as pending.
    body = client.get("/api/data/stats").get_json()
    assert body["unusable_reasons"] == {"not_text": 2, "no_words": 2, "no_audio": 2, "undecodable": 1,
                                        "too_long": 1}
    assert body["unusable"] == 8
    assert body["reviewed"] == (body["trained"] + body["pending_training"] + body["heldout"] + body["regression"]
                                + body["unusable"]) == 16
    assert body["pending_training"] + body["heldout"] == 7
    # The filter lists exactly them, each with its reason.
    listed = client.get("/api/data?unusable=true").get_json()
    reasons = {row["id"]: row["unusable"] for row in listed}
    assert reasons == {long_one: "too_long", **{i: "no_audio" for i in silent}, broken: "undecodable",
                       **{i: "no_words" for i in wordless}, **{i: "not_text" for i in not_text}}
    assert all(row["unusable"] is None for row in client.get("/api/data?unusable=false").get_json())


def test_raw_pcm_left_out_for_its_format_is_usable_once_the_setting_fits(tmp_path, cfg, conn, speech):
    import dataclasses

    import numpy as np

    from training.src.app import create_app

    floats = (np.frombuffer(speech["pcm"], "<i2").astype(np.float32) / 32768).astype("<f4").tobytes()
    item_id = database.insert_item(conn, "turn on the kitchen lights", floats, is_reviewed=1)
    stats = create_app(cfg).test_client().get("/api/data/stats").get_json()
    assert stats["unusable_reasons"] == {"undecodable": 1}
    error = conn.execute("SELECT error FROM s2s_app_audio_meta WHERE item_id = ?", (item_id,)).fetchone()[0]
    assert 'pcm_sample_format = "f32le"' in error
    fitted = dataclasses.replace(cfg, audio=dataclasses.replace(cfg.audio, pcm_sample_format="f32le"))
    stats = create_app(fitted).test_client().get("/api/data/stats").get_json()
    assert stats["unusable"] == 0 and stats["pending_training"] + stats["heldout"] == 1


def test_search_folds_case_and_accents_beyond_ascii(client, conn, speech):
    ids = {t: database.insert_item(conn, t, speech["hello"]) for t in
           ["İstanbul at noon", "ISTANBUL again", "Émile called", "die Straße", "nothing"]}
    def found(q):
        return {i["transcript"] for i in client.get("/api/data", query_string={"q": q}).get_json()}
    assert found("istanbul") == {"İstanbul at noon", "ISTANBUL again"}
    assert found("EMILE") == {"Émile called"}
    assert found("strasse") == {"die Straße"}
    assert found("İstanbul") == {"İstanbul at noon", "ISTANBUL again"}
    assert len(ids) == 5
