"""Rows the assistant wrote with the wrong types: each lists, opens, trains or is left out with a reason, and saves.

SQLite does not enforce column types, so these are rows another program can write.
"""
from __future__ import annotations

import json

import pytest

from stt.runs import jobs, worker
from tests import tiny_whisper
from utils import database

BAD = {
    "transcript stored as a BLOB": ("transcript = CAST('turn on the lamp' AS BLOB)", "stored as blob"),
    "transcript not valid UTF-8": ("transcript = CAST(x'6869ff' AS TEXT)", "not valid UTF-8"),
    "timestamp stored as a BLOB": ("timestamp = x'00ff'", "timestamp is stored as blob"),
    "is_reviewed = 'yes'": ("is_reviewed = 'yes'", "is_reviewed holds 'yes', which reads as not reviewed"),
    "is_trained = x'01'": ("is_trained = x'01'", "is_trained holds X'01', which reads as not trained"),
    "is_reviewed = 0.5": ("is_reviewed = 0.5", "is_reviewed holds 0.5"),
}


def spoil(conn, item_id: int, assignment: str) -> None:
    conn.execute(f"UPDATE s2s_training_data SET {assignment} WHERE id = ?", (item_id,))


@pytest.mark.parametrize("kind", BAD)
def test_a_badly_typed_row_lists_opens_and_is_repaired_by_saving(client, conn, speech, kind):
    good = database.insert_item(conn, "a good row", speech["hello"], is_reviewed=1)
    bad = database.insert_item(conn, "a row to spoil", speech["weather"], is_reviewed=1)
    assignment, said = BAD[kind]
    spoil(conn, bad, assignment)

    listing = client.get("/api/data")
    assert listing.status_code == 200
    rows = {r["id"]: r for r in listing.get_json()}
    assert set(rows) == {good, bad} and rows[good]["problem"] is None
    if kind != "transcript not valid UTF-8":  # SQL cannot see bad bytes, so the list does not say; the item does
        assert said in rows[bad]["problem"]
    assert all(isinstance(r["transcript"], (str, type(None))) and r["is_reviewed"] in (0, 1) for r in rows.values())
    assert client.get("/api/data?q=row").status_code == 200 and client.get("/api/data/stats").status_code == 200

    item = client.get(f"/api/data/{bad}")
    assert item.status_code == 200
    body = item.get_json()
    assert said in body["problem"] and isinstance(body["transcript"], str)
    assert body["is_reviewed"] in (0, 1) and body["is_trained"] in (0, 1)

    saved = client.put(f"/api/data/{bad}", json={"transcript": "Turn on the lamp.", "is_reviewed": True},
                       headers={"If-Match": body["version"]})
    assert saved.status_code == 200, saved.get_json()
    types = conn.execute("SELECT typeof(transcript), typeof(is_reviewed), is_reviewed, "
                         "is_trained IN (0, 1) FROM s2s_training_data WHERE id = ?", (bad,)).fetchone()
    assert tuple(types) == ("text", "integer", 1, 1)
    if kind != "timestamp stored as a BLOB":  # nothing the editor can know replaces a timestamp; kept as it is
        assert saved.get_json()["problem"] is None


def test_training_goes_on_around_badly_typed_rows(conn, cfg, speech, fake_engine):
    tiny_whisper.build(cfg.model.path)
    ids = [database.insert_item(conn, f"reviewed sentence {i}", speech["weather"], is_reviewed=1) for i in range(10)]
    for item_id, kind in zip(ids, BAD):
        spoil(conn, item_id, BAD[kind][0])
    started = jobs.start_record(cfg)
    run = worker.run(started["job_id"], cfg)
    assert run["state"] == "done", run["message"]
    used = set(fake_engine.seen.train) | set(fake_engine.seen.heldout)
    # A transcript that is not text never enters the plan; one whose bytes are not UTF-8 is left out by the run.
    blob, utf8 = ids[0], ids[1]
    assert blob not in used and utf8 not in used
    assert utf8 in run["result"]["skipped_items"] or utf8 not in jobs.plan(conn, cfg).train
    assert "not text" in run["message"] or utf8 not in used
    json.dumps(run)  # the run itself holds nothing JSON cannot say


def test_the_pages_say_what_is_wrong_and_saving_repairs_it(page, conn, speech):
    from playwright.sync_api import expect

    bad = database.insert_item(conn, "a row to spoil", speech["weather"])
    spoil(conn, bad, "transcript = CAST('turn on the lamp' AS BLOB), is_reviewed = 'yes'")
    page.goto("/")
    row = page.locator(f"#items-body tr[data-id='{bad}']")
    expect(row).to_contain_text("turn on the lamp")
    expect(row.locator(".badge", has_text="Needs repair")).to_be_visible()
    page.goto(f"/editor?id={bad}")
    expect(page.locator("#row-problem")).to_contain_text("stored as blob")
    expect(page.locator("#transcript")).to_have_value("turn on the lamp")
    page.keyboard.press("Control+s")
    expect(page.locator("#save-state")).to_have_text("Saved ✓")
    expect(page.locator("#row-problem")).to_be_hidden()
    assert tuple(conn.execute("SELECT typeof(transcript), is_reviewed FROM s2s_training_data WHERE id = ?",
                              (bad,)).fetchone()) == ("text", 1)
