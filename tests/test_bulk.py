"""Find and replace across transcripts: preview, apply all or the ticked ones in one batch, undo it later."""
from __future__ import annotations

from playwright.sync_api import expect

from utils import database

TEXTS = ["call jon about the boat", "Jon's boat is red", "jonathan called", "tell JON hello",
         "nothing here", "bonjon mixes words"]


def _fill(conn, speech) -> list[int]:
    ids = [database.insert_item(conn, t, speech["hello"]) for t in TEXTS]
    database.update_item(conn, ids[3], is_reviewed=True)  # reviewed: only changed when asked
    conn.execute("UPDATE s2s_training_data SET is_trained = 1 WHERE id = ?", (ids[1],))
    return ids


def _texts(conn, ids) -> list[str]:
    return [database.get_item(conn, i)["transcript"] for i in ids]


def test_preview_whole_words_case_and_reviewed(client, conn, speech):
    ids = _fill(conn, speech)
    body = {"find": "jon", "replace": "John"}
    found = client.post("/api/bulk/preview", json=body).get_json()
    assert [m["id"] for m in found["matches"]] == [ids[0], ids[1]]  # not "jonathan", "bonjon", nor the reviewed one
    assert found["matches"][1]["replaced"] == "John's boat is red" and found["total"] == 2
    with_reviewed = client.post("/api/bulk/preview", json={**body, "include_reviewed": True}).get_json()
    assert [m["id"] for m in with_reviewed["matches"]] == [ids[0], ids[1], ids[3]]
    exact = client.post("/api/bulk/preview", json={**body, "match_case": True, "include_reviewed": True}).get_json()
    assert [m["id"] for m in exact["matches"]] == [ids[0]]
    inside = client.post("/api/bulk/preview", json={**body, "whole_word": False}).get_json()
    assert [m["id"] for m in inside["matches"]] == [ids[0], ids[1], ids[2], ids[5]]
    assert client.post("/api/bulk/preview", json={"find": "  ", "replace": "x"}).status_code == 400
    assert client.post("/api/bulk/preview", json={"find": "x"}).status_code == 400
    assert client.post("/api/bulk/preview", json={"find": "a\u202eb", "replace": "x"}).status_code == 400


def test_apply_all_ticked_and_undo(client, conn, speech):
    ids = _fill(conn, speech)
    body = {"find": "jon", "replace": "John", "include_reviewed": True}
    found = client.post("/api/bulk/preview", json=body).get_json()
    ticked = [{"id": m["id"], "version": m["version"]} for m in found["matches"] if m["id"] != ids[0]]
    done = client.post("/api/bulk/apply", json={**body, "items": ticked}).get_json()
    assert done["changed"] == 2 and done["skipped"] == []
    assert _texts(conn, ids[:4]) == ["call jon about the boat", "John's boat is red", "jonathan called",
                                     "tell John hello"]
    reviewed, trained = database.get_item(conn, ids[3]), database.get_item(conn, ids[1])
    assert reviewed["is_reviewed"] == 1 and trained["is_trained"] == 0  # stays reviewed; new text is pending

    database.update_item(conn, ids[3], transcript="tell John hi")  # edited after the batch: undo leaves it
    undone = client.post(f"/api/bulk/{done['batch_id']}/undo").get_json()
    assert undone["restored"] == 1 and [s["id"] for s in undone["skipped"]] == [ids[3]]
    assert _texts(conn, [ids[1], ids[3]]) == ["Jon's boat is red", "tell John hi"]
    assert database.get_item(conn, ids[1])["is_trained"] == 1  # what the model learned is true again
    assert client.post(f"/api/bulk/{done['batch_id']}/undo").status_code == 409
    assert client.post("/api/bulk/nosuchbatch/undo").status_code == 404
    assert [b["batch_id"] for b in client.get("/api/bulk").get_json()] == [done["batch_id"]]


def test_stale_versions_and_tags_are_refused_like_single_edits(client, conn, speech):
    ids = _fill(conn, speech)
    body = {"find": "jon", "replace": "John"}
    found = client.post("/api/bulk/preview", json=body).get_json()
    database.update_item(conn, ids[0], transcript="call jon about the car")  # someone else, after the preview
    items = [{"id": m["id"], "version": m["version"]} for m in found["matches"]]
    done = client.post("/api/bulk/apply", json={**body, "items": items}).get_json()
    assert done["changed"] == 1 and done["skipped"] == [{"id": ids[0], "reason": "changed since the preview"}]

    found = client.post("/api/bulk/preview", json=body).get_json()
    database.insert_item(conn, "jon again", speech["hello"])  # a new match appears
    stale = client.post("/api/bulk/apply", json={**body, "all": True}, headers={"If-Match": f'"{found["tag"]}"'})
    assert stale.status_code == 412 and stale.get_json()["total"] == 2
    fresh = stale.get_json()["tag"]
    done = client.post("/api/bulk/apply", json={**body, "all": True}, headers={"If-Match": f'"{fresh}"'}).get_json()
    assert done["changed"] == 2
    assert client.post("/api/bulk/apply", json=body).status_code == 400  # neither items nor all
    # `all` is checked beside `items` too (found by the schema fuzzer): null is not a flag.
    refused = client.post("/api/bulk/apply", json={**body, "items": [], "all": None})
    assert refused.status_code == 400 and refused.get_json()["field"] == "all"
    # And `items: null` is not `items` left out (the fuzzer again): the schema says an array.
    refused = client.post("/api/bulk/apply", json={**body, "items": None, "all": True})
    assert refused.status_code == 400 and refused.get_json()["field"] == "items"


def test_find_and_replace_on_the_dashboard(page, conn, speech):
    ids = _fill(conn, speech)
    page.goto("/")
    page.fill("#bulk-find", "jon")
    page.fill("#bulk-replace", "John")
    page.check("#bulk-reviewed")
    page.click("#bulk-preview-btn")
    expect(page.locator("#bulk-summary")).to_have_text("3 transcripts would change.")
    expect(page.locator("#bulk-matches li").first.locator("ins")).to_have_text("John")
    expect(page.locator("#bulk-apply")).to_have_text("Apply to all 3")
    page.get_by_label(f"Change item {ids[0]}").uncheck()
    expect(page.locator("#bulk-apply")).to_have_text("Apply to 2 ticked")
    page.click("#bulk-apply")
    expect(page.locator("#toast")).to_contain_text("Changed 2 transcripts")
    assert _texts(conn, [ids[0], ids[1], ids[3]]) == ["call jon about the boat", "John's boat is red",
                                                      "tell John hello"]
    expect(page.locator("#items-body")).to_contain_text("John's boat is red")
    page.locator("#bulk-batches").get_by_role("button", name="Undo").click()
    expect(page.locator("#toast")).to_contain_text("Undone: 2 transcripts restored")
    expect(page.locator("#bulk-batches")).to_contain_text("Undone")
    assert _texts(conn, [ids[1], ids[3]]) == ["Jon's boat is red", "tell JON hello"]


def test_undo_takes_back_only_its_own_change(client, conn, speech):
    """Issue: an approval given after the batch was undone with its text, and after a rollback to v0 undo
    marked trained an item v0 never saw."""
    from utils import runs

    approved, learned = (database.insert_item(conn, t, speech["hello"]) for t in ("jon approved later", "jon learned"))
    job = runs.create(conn, "adapt", 1, 0)
    runs.update(conn, job, version="v1-20260101-000000", state="done")
    runs.record_items(conn, job, [(learned, "trained", "jon learned")])
    conn.execute("UPDATE s2s_training_data SET is_trained = 1, is_reviewed = 1 WHERE id = ?", (learned,))
    body = {"find": "jon", "replace": "John", "include_reviewed": True}
    done = client.post("/api/bulk/apply", json={**body, "all": True}).get_json()
    assert done["changed"] == 2
    database.update_item(conn, approved, is_reviewed=True)  # the reviewer approves the batch's text
    # The deployed model is the original (a rollback since, say): it never learned "jon learned".
    undone = client.post(f"/api/bulk/{done['batch_id']}/undo").get_json()
    assert [s["id"] for s in undone["skipped"]] == [approved] and undone["restored"] == 1
    assert _texts(conn, [approved, learned]) == ["John approved later", "jon learned"]
    assert database.get_item(conn, learned)["is_trained"] == 0


def test_a_replacement_stays_within_a_transcripts_length_and_the_preview_is_bounded(client, conn, speech):
    long_ones = [database.insert_item(conn, "a " * 4_500, speech["hello"]) for _ in range(200)]
    body = {"find": "a", "replace": "Q" * 3_000}
    preview = client.post("/api/bulk/preview", json=body)
    found = preview.get_json()
    assert found["total"] == 200 and 0 < len(found["matches"]) < 200 and len(preview.data) < 2_500_000
    assert all("10,000 a transcript may" in m["refused"] for m in found["matches"])
    done = client.post("/api/bulk/apply", json={**body, "all": True}).get_json()
    assert done["changed"] == 0 and len(done["skipped"]) == 200
    assert max(len(database.get_item(conn, i)["transcript"]) for i in long_ones) == 9_000


def test_find_reaches_transcripts_beyond_ascii(client, conn, speech):
    ids = [database.insert_item(conn, t, speech["hello"]) for t in ["İstanbul at noon", "from istanbul", "Istanbuls"]]
    found = client.post("/api/bulk/preview", json={"find": "istanbul", "replace": "Istanbul"}).get_json()
    assert [m["id"] for m in found["matches"]] == ids[:2]  # the dotted capital too; not inside another word
    assert found["matches"][0]["replaced"] == "Istanbul at noon"
