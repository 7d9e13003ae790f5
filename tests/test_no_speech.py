"""Clips without speech (a false wake, a cough, the television): marked in one key, trained on with an
empty target, and measured by the share of them on which the model writes any word."""
from __future__ import annotations

import io
import subprocess

import pytest
import soundfile as sf
from playwright.sync_api import expect

from stt.finetune import deploy_rule
from stt.runs import jobs
from stt.runs.worker import run
from tests import tiny_whisper
from utils import database, training_sets

# Sounds a voice assistant hears when no one speaks to it, made with sox as the issue asks.
SOX = {"noise": ["synth", "2", "whitenoise", "vol", "0.05"],
       "hum": ["synth", "2", "sine", "50", "vol", "0.2"],
       "clicks": ["synth", "2", "square", "3", "vol", "0.1"],
       "tones": ["synth", "0.5", "sine", "440", "synth", "0.5", "sine", "mix", "660", "vol", "0.2", "repeat", "2"],
       "room": ["synth", "2", "brownnoise", "vol", "0.02"],
       "silence": ["trim", "0", "2"]}


def sox_clip(kind: str) -> bytes:
    """16 kHz mono WAV from sox (`-n`: no input), as the assistant would store it."""
    done = subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", "-b", "16", "-t", "wav", "-", *SOX[kind]],
                          capture_output=True, check=True)
    samples, rate = sf.read(io.BytesIO(done.stdout), dtype="float32")  # sox's streamed header leaves sizes unset
    out = io.BytesIO()
    sf.write(out, samples, rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


@pytest.fixture(scope="module")
def noises() -> dict[str, bytes]:
    return {kind: sox_clip(kind) for kind in SOX}


def _put(client, item_id: int, body: dict):
    version = client.get(f"/api/data/{item_id}?audio=0").get_json()["version"]
    return client.put(f"/api/data/{item_id}", json=body, headers={"If-Match": f'"{version}"'})


def test_mark_filter_count_and_clear_through_the_api(client, conn, noises):
    item_id = database.insert_item(conn, "thank you", noises["hum"])  # what Whisper "heard" in the hum
    answer = _put(client, item_id, {"transcript": "", "is_reviewed": True, "no_speech": True})
    assert answer.status_code == 200, answer.get_json()
    item = answer.get_json()
    assert (item["transcript"], item["is_reviewed"], item["no_speech"]) == ("", 1, True)
    assert [i["id"] for i in client.get("/api/data?no_speech=true").get_json()] == [item_id]
    assert client.get("/api/data?no_speech=false").get_json() == []
    assert client.get("/api/data/stats").get_json()["pending_training"] + \
        client.get("/api/data/stats").get_json()["heldout"] == 1  # an empty transcript that teaches something

    assert _put(client, item_id, {"transcript": "hello", "no_speech": True}).status_code == 400
    assert _put(client, item_id, {"no_speech": True, "is_reviewed": False}).status_code == 400
    words = _put(client, item_id, {"transcript": "turn it off"}).get_json()  # words clear the mark
    assert words["no_speech"] is False and words["transcript"] == "turn it off"
    again = _put(client, item_id, {"no_speech": True}).get_json()  # the flag alone empties and reviews
    assert (again["transcript"], again["is_reviewed"], again["no_speech"]) == ("", 1, True)
    assert _put(client, item_id, {"no_speech": False}).get_json()["no_speech"] is False


def test_a_model_that_writes_on_more_silent_clips_is_not_deployed():
    quiet, chatty = [(0, 0)] * 4 + [(1, 0)], [(0, 0)] * 3 + [(2, 0)] * 2
    speech = [(2, 10)] * 5
    ok, message = deploy_rule.verdict({"heldout": {"before": speech, "after": speech},
                                       "no_speech": {"before": chatty, "after": quiet}}, 0.0, 0.95)
    assert ok and "words on held-out clips without speech 40% → 20%" in message
    ok, message = deploy_rule.verdict({"heldout": {"before": speech, "after": [(0, 10)] * 5},
                                       "no_speech": {"before": quiet, "after": chatty}}, 0.0, 0.95)
    assert not ok and "writes words on 40% of the 5 held-out clips without speech, up from 20%" in message


def test_a_run_trains_on_them_and_measures_them_apart(cfg, conn, noises, speech):
    tiny_whisper.build(cfg.model.path)
    cfg.training.epochs = 1
    cfg.training.heldout_min = 0
    cfg.training.heldout_fraction = 0.0
    spoken = [database.insert_item(conn, f"hello there number {n}", speech["hello"], is_reviewed=1) for n in range(3)]
    silent = []
    for clip in noises.values():
        silent.append(database.insert_item(conn, "you", clip))
        database.update_item(conn, silent[-1], no_speech=True)
    held = silent[:2]  # two held out: measured by whether the model writes anything on them
    training_sets.keep_heldout(conn, held)
    started = jobs.start_record(cfg)
    finished = run(started["job_id"], cfg)
    assert finished["state"] == "done", finished["message"]
    roles = dict(conn.execute("SELECT item_id, role FROM s2s_app_train_items WHERE job_id = ?",
                              (started["job_id"],)).fetchall())
    assert {i for i, r in roles.items() if r in ("train", "trained")} == set(spoken) | set(silent[2:])
    assert {i for i, r in roles.items() if r == "heldout"} == set(held)
    result = finished["result"]
    assert result["no_speech_before"] is not None and result["no_speech_after"] is not None
    assert len(result["clip_errors"]["no_speech"]["before"]) == 2
    assert all(words == 0 for _, words in result["clip_errors"]["no_speech"]["before"])
    assert "heldout" not in result["clip_errors"]  # no speech among the held-out: no WER of silence
    if finished["deployed"]:
        assert {r[0] for r in conn.execute("SELECT id FROM s2s_training_data WHERE is_trained = 1")} == \
            set(spoken) | set(silent[2:])


def test_alt_n_in_the_editor(page, conn, noises):
    item_id = database.insert_item(conn, "thank you", noises["noise"])
    next_id = database.insert_item(conn, "next one", noises["hum"])
    page.goto(f"/editor?id={item_id}")
    expect(page.locator("#transcript")).to_have_value("thank you")
    page.locator("#transcript").focus()
    page.keyboard.press("Alt+n")
    # Saved, and on to the next item as Ctrl+Enter goes, with the replaced text kept for an undo.
    expect(page.locator("#d-id")).to_have_text(str(next_id))
    expect(page.locator("#undo-bar")).to_contain_text(f"Item {item_id} saved as no speech (its text was “thank you”)")
    item = database.get_item(conn, item_id)
    assert (item["transcript"], item["is_reviewed"], item["no_speech"]) == ("", 1, True)
    expect(page.locator("ul.shortcuts")).to_contain_text("no speech in this clip: trained as silence")
    page.click("#undo-btn")
    expect(page.locator("#d-id")).to_have_text(str(item_id))
    expect(page.locator("#transcript")).to_have_value("thank you")
    expect(page.locator("#undo-bar")).to_be_hidden()
    item = database.get_item(conn, item_id)
    assert (item["transcript"], item["is_reviewed"], item["no_speech"]) == ("thank you", 0, False)
    # Marked again, it says what happens to it: trained as silence.
    page.keyboard.press("Alt+n")
    page.goto(f"/editor?id={item_id}")
    expect(page.locator("#item-badges")).to_contain_text("No speech")
    expect(page.locator("#reviewed-hint")).to_have_text(
        "No speech: trained as silence (the model learns to write nothing)")


def test_saving_a_reviewed_clip_without_words_asks_whether_no_one_speaks(page, conn, noises):
    """Issue: a NULL transcript opened ticked, and Ctrl+Enter saved it reviewed with no words: neither trained
    on nor marked as no speech."""
    item_id = database.insert_item(conn, None, noises["room"])
    page.goto(f"/editor?id={item_id}")
    expect(page.locator("#reviewed")).to_be_checked()
    expect(page.locator("#reviewed-hint")).to_contain_text("saving asks whether no one speaks")
    page.once("dialog", lambda d: d.dismiss())
    page.keyboard.press("Control+Enter")
    expect(page.locator("#save-state")).to_contain_text("Not saved")
    assert database.get_item(conn, item_id)["is_reviewed"] == 0
    page.once("dialog", lambda d: d.accept())
    page.keyboard.press("Control+Enter")
    expect(page.locator("#done-panel")).to_be_visible()
    item = database.get_item(conn, item_id)
    assert (item["transcript"], item["is_reviewed"], item["no_speech"]) == ("", 1, True)
