"""The pages in a real browser: Debian's Chromium, headless, driven by Playwright against waitress."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from utils import database

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]
XSS = "<script>window.__xss=1</script><b>bold</b><img src=x onerror=window.__xss=2>"


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, live_server) -> Page:
    context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def test_dashboard_counts_filters_and_search(page, seeded):
    page.goto("/")
    expect(page.locator("#stat-total")).to_have_text("6")
    expect(page.locator("#stat-reviewed")).to_have_text("2")
    expect(page.locator("#stat-trained")).to_have_text("1")
    expect(page.locator("#stat-pending")).to_have_text("0")
    expect(page.locator("#items-body tr")).to_have_count(6)
    # Nothing pending: the Train button says why it is disabled.
    expect(page.locator("#train-btn")).to_be_disabled()
    expect(page.locator("#train-reason")).to_contain_text("review some items")

    page.select_option("#f-reviewed", "true")
    expect(page.locator("#items-body tr")).to_have_count(2)
    page.select_option("#f-reviewed", "")
    page.select_option("#f-trained", "false")
    expect(page.locator("#items-body tr")).to_have_count(5)
    page.select_option("#f-trained", "")
    page.fill("#f-q", "kitchen")
    expect(page.locator("#items-body tr")).to_have_count(1)
    expect(page.locator("#items-body tr")).to_contain_text("turn on the kitchen light")
    expect(page.locator("#page-info")).to_have_text("1–1 of 1")


def test_dashboard_sorts_and_opens_a_row_in_the_editor(page, seeded):
    page.goto("/")
    expect(page.locator("#items-body tr").first).to_have_attribute("data-id", str(seeded["trained"]))
    page.click("th[data-sort=id]")  # toggles to ascending
    expect(page.locator("#items-body tr").first).to_have_attribute("data-id", str(seeded["wav"]))
    page.locator("#items-body tr").nth(2).click()
    expect(page).to_have_url(re.compile(rf"/editor\?id={seeded['pcm']}$"))
    expect(page.locator("#transcript")).to_have_value("turn on the kitchen light")


def test_review_with_the_keyboard(page, seeded, conn):
    page.goto("/editor")
    # The oldest unreviewed item loads first, with its audio and details.
    expect(page.locator("#d-id")).to_have_text(str(seeded["wav"]))
    expect(page.locator("#transcript")).to_have_value("hello there how are you to day")
    expect(page.locator("#d-format")).to_have_text("audio/wav")
    expect(page.locator("#reviewed")).to_be_checked()

    textarea = page.locator("#transcript")
    textarea.focus()
    page.keyboard.press("Control+Space")  # play while the cursor stays in the text
    page.wait_for_function("() => !document.getElementById('audio').paused && document.getElementById('audio').currentTime > 0")
    page.keyboard.press("Control+Space")
    expect(page.locator("#play-btn")).to_have_text(re.compile("Play"))

    textarea.fill("Hello there, how are you today?")
    expect(page.locator("#save-state")).to_have_text("Unsaved changes")
    page.keyboard.press("Control+Enter")  # save & next
    expect(page.locator("#d-id")).to_have_text(str(seeded["pcm"]))
    expect(page).to_have_url(re.compile(rf"/editor\?id={seeded['pcm']}$"))
    row = database.get_item(conn, seeded["wav"])
    assert row["transcript"] == "Hello there, how are you today?" and row["is_reviewed"] == 1


def test_waveform_click_seeks_and_speed_changes(page, seeded):
    page.goto(f"/editor?id={seeded['wav']}")
    page.wait_for_function("() => document.getElementById('audio').duration > 0")
    box = page.locator("#wave").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
    position = page.evaluate("() => document.getElementById('audio').currentTime / document.getElementById('audio').duration")
    assert 0.4 < position < 0.6
    page.select_option("#speed", "1.5")
    assert page.evaluate("() => document.getElementById('audio').playbackRate") == 1.5


def test_transcript_html_renders_as_text_on_both_pages(page, conn, seeded):
    database.update_item(conn, seeded["wav"], transcript=XSS)
    page.goto("/")
    expect(page.locator(f"#items-body tr[data-id='{seeded['wav']}'] td.preview")).to_have_text(XSS)
    assert page.evaluate("() => window.__xss") is None
    page.goto(f"/editor?id={seeded['wav']}")
    expect(page.locator("#transcript")).to_have_value(XSS)
    page.click("#save-btn")  # the conflict panel and save path also render it as text
    expect(page.locator("#save-state")).to_have_text("Saved ✓")
    assert page.evaluate("() => window.__xss") is None
    assert page.locator("b", has_text="bold").count() == 0


def test_stale_version_shows_the_conflict_and_keeps_theirs(page, conn, seeded):
    page.goto(f"/editor?id={seeded['pcm']}")
    expect(page.locator("#transcript")).to_have_value("turn on the kitchen light")
    database.update_item(conn, seeded["pcm"], transcript="their correction")  # another reviewer saves first
    page.fill("#transcript", "my correction")
    page.keyboard.press("Control+s")
    expect(page.locator("#conflict")).to_be_visible()
    expect(page.locator("#conflict-text")).to_have_text("their correction")
    assert database.get_item(conn, seeded["pcm"])["transcript"] == "their correction"
    page.click("#conflict-mine")  # a deliberate overwrite after seeing theirs
    expect(page.locator("#save-state")).to_have_text("Saved ✓")
    assert database.get_item(conn, seeded["pcm"])["transcript"] == "my correction"


def test_corrupt_audio_shows_why_and_the_transcript_still_saves(page, conn, seeded):
    page.goto(f"/editor?id={seeded['corrupt']}")
    expect(page.locator("#audio-error")).to_be_visible()
    expect(page.locator("#audio-error")).to_contain_text("cannot be played")
    page.fill("#transcript", "fixed by hand")
    page.keyboard.press("Control+s")
    expect(page.locator("#save-state")).to_have_text("Saved ✓")
    assert database.get_item(conn, seeded["corrupt"])["transcript"] == "fixed by hand"


def test_unsaved_edits_ask_before_leaving(page, seeded):
    page.goto(f"/editor?id={seeded['wav']}")
    page.fill("#transcript", "half typed")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.keyboard.press("Alt+ArrowDown")
    page.wait_for_timeout(300)
    assert dialogs and "unsaved" in dialogs[0].lower()
    expect(page.locator("#d-id")).to_have_text(str(seeded["wav"]))  # stayed
    expect(page.locator("#transcript")).to_have_value("half typed")


def test_all_caught_up(page, conn, seeded):
    conn.execute("UPDATE s2s_training_data SET is_reviewed = 1")
    page.goto("/editor")
    expect(page.locator("#done-panel")).to_be_visible()
    expect(page.locator("#done-panel")).to_contain_text("All caught up")


def test_train_from_the_dashboard_with_live_progress_and_history(page, conn, cfg, speech):
    from tests import tiny_whisper

    tiny_whisper.build(cfg.model.path)
    cfg.training.epochs = 2
    for i in range(7):
        database.insert_item(conn, f"reviewed sentence {i}", speech["weather"], is_reviewed=1)
    page.goto("/")
    expect(page.locator("#stat-pending")).to_have_text("4")
    expect(page.locator("#stat-heldout")).to_contain_text("3 held out")
    expect(page.locator("#train-btn")).to_be_enabled()
    page.click("#train-btn")
    expect(page.locator("#train-progress")).to_be_visible()
    expect(page.locator("#train-btn")).to_be_disabled()
    expect(page.locator("#train-result")).to_be_visible(timeout=240_000)
    expect(page.locator("#train-result")).to_contain_text(re.compile("Deployed|Not deployed"))
    expect(page.locator("#runs-body tr")).to_have_count(1)
    expect(page.locator("#versions li")).to_have_count(2)  # the original and the new version
    expect(page.locator("#wer-chart svg")).to_be_visible()
