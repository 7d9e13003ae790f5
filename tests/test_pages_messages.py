"""Small things the dashboard says, against scripted answers: each said once, and never a count of nothing."""
from __future__ import annotations

import json

from playwright.sync_api import Route, expect


def reply(route: Route, body, status: int = 200) -> None:
    route.fulfill(status=status, content_type="application/json", body=json.dumps(body))


def test_a_cancelled_run_says_so_once(page, seeded):
    running = {"job_id": "j1", "state": "training", "active": True, "phase": "training", "step": 1, "total": 8, "percent": 12.5,
               "eta_s": 30, "loss": 2.0, "message": "Training."}
    cancelled = {"job_id": "j1", "state": "cancelled", "deployed": False, "percent": 0, "step": 1, "total": 8,
                 "message": "Cancelled: the deployed model was not changed."}
    answers = iter([running, running])
    page.route("**/api/train/status", lambda r: reply(r, next(answers, cancelled)))
    page.goto("/")
    expect(page.locator("#train-result")).to_be_visible()
    expect(page.locator("#train-result")).to_have_text("Training cancelled. The deployed model was not changed.")


def test_scoring_that_has_not_counted_its_clips_says_scoring(page, seeded):
    answers = iter([{"state": "running", "done": 0, "total": 0}])
    page.route("**/api/suggestions/score", lambda r: reply(r, next(answers, {"state": "running", "done": 1, "total": 4})))
    page.goto("/")
    expect(page.locator("#score-status")).to_have_text("Scoring…")
    expect(page.locator("#score-status")).to_have_text("Scoring 1 of 4…")
