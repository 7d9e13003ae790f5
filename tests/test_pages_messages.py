"""Small things the dashboard says, against scripted answers: each said once, and never a count of nothing."""
from __future__ import annotations

import json

from playwright.sync_api import Route, expect


def reply(route: Route, body, status: int = 200) -> None:
    route.fulfill(status=status, content_type="application/json", body=json.dumps(body))


def test_a_cancelled_run_says_so_once(page, seeded):
    running = {"job_id": "j1", "state": "training", "active": True, "phase": "training", "step": 1, "total": 8,
               "percent": 12.5, "eta_s": 30, "loss": 2.0, "message": "Training."}
    cancelled = {"job_id": "j1", "state": "cancelled", "deployed": False, "percent": 0, "step": 1, "total": 8,
                 "message": "Cancelled: the deployed model was not changed."}
    answers = iter([running, running])
    page.route("**/api/train/status", lambda r: reply(r, next(answers, cancelled)))
    page.goto("/")
    expect(page.locator("#train-result")).to_be_visible()
    expect(page.locator("#train-result")).to_have_text("Training cancelled. The deployed model was not changed.")


def test_scoring_that_has_not_counted_its_clips_says_scoring(page, seeded):
    answers = iter([{"state": "running", "done": 0, "total": 0}])
    page.route("**/api/suggestions/score",
               lambda r: reply(r, next(answers, {"state": "running", "done": 1, "total": 4})))
    page.goto("/")
    expect(page.locator("#score-status")).to_have_text("Scoring…")
    expect(page.locator("#score-status")).to_have_text("Scoring 1 of 4…")


def test_rows_whose_audio_cannot_play_say_so(page, seeded, client):
    client.get("/api/data/stats")  # the stats measure unmeasured audio first, as the dashboard's first look does
    page.goto("/")
    for name in ("corrupt", "empty"):
        row = page.locator(f'#items-body tr[data-id="{seeded[name]}"]')
        expect(row).to_have_class("unplayable")
        expect(row.locator(".badge").first).to_have_text("Won't play")
    expect(page.locator(f'#items-body tr[data-id="{seeded["wav"]}"] .badge').first).to_have_text("To review")


def test_save_and_next_stays_beside_save_whatever_the_hint_says(page, seeded):
    page.goto(f"/editor?id={seeded['wav']}")
    # The item's details are filled in before the editor is shown: wait for the buttons themselves.
    expect(page.locator("#save-next-btn")).to_be_visible()
    page.evaluate("""() => { document.getElementById('reviewed-hint').textContent =
        'No words: saved as reviewed it is trained as silence, ' +
        'so the model learns to write nothing on clips like it.'; }""")
    save, save_next = page.locator("#save-btn").bounding_box(), page.locator("#save-next-btn").bounding_box()
    assert abs(save["y"] - save_next["y"]) < 2, (save, save_next)


def test_a_run_and_its_wer_read_the_same_in_the_banner_and_the_history(page, seeded):
    """Issue: the banner said 6.2% and the history 6.3% for the same WER (0.0625)."""
    from utils.formatting import percent

    done = {"job_id": "j1", "state": "done", "deployed": True, "percent": 100, "step": 8, "total": 8,
            "message": f"Deployed: WER held-out {percent(0.25)} → {percent(0.0625)}."}
    run = {"job_id": "j1", "state": "done", "deployed": 1, "wer_before": 0.25, "wer_after": 0.0625, "mode": "adapt",
           "items": 8, "heldout_items": 4, "started_at": "2026-12-01T10:00:00+00:00",
           "finished_at": "2026-12-01T10:05:00+00:00", "version": "v1", "message": done["message"]}
    page.route("**/api/train/status", lambda r: reply(r, done))
    page.route("**/api/train/runs*", lambda r: reply(r, [run]))
    page.goto("/")
    expect(page.locator("#runs-body")).to_contain_text("6.3%")
    assert "6.2%" not in page.locator("body").inner_text()
