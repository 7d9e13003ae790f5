"""Both pages on a phone (390×844) in Chromium: no sideways scrolling, every control on screen and reachable."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from stt.runs import jobs, worker
from tests import tiny_whisper
from utils import database

PHONE = {"width": 390, "height": 844}
# Where a screenshot of each page is left for a person to look at (S2S_SCREENSHOTS=folder), if wanted.
SHOTS = os.environ.get("S2S_SCREENSHOTS")

# Every visible control or status that reaches past the right edge of the screen, or of a box that clips it.
OFF_SCREEN = """() => {
  const out = [];
  for (const node of document.querySelectorAll("button, a, input, select, textarea, .badge, [id^=stat-]")) {
    const box = node.getBoundingClientRect();
    if (!box.width || !box.height || node.closest("[hidden]")) continue;
    let edge = document.documentElement.clientWidth;
    for (let up = node.parentElement; up; up = up.parentElement) {
      if (getComputedStyle(up).overflowX !== "visible") edge = Math.min(edge, up.getBoundingClientRect().right);
    }
    if (box.right > edge + 1)
      out.push(`${node.tagName.toLowerCase()} ${node.id || node.textContent.trim().slice(0, 30)} ` +
               `ends at ${Math.round(box.right)} of ${Math.round(edge)}`);
  }
  return out;
}"""


@pytest.fixture
def phone(browser, live_server):
    context = browser.new_context(base_url=live_server, viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == []


@pytest.fixture
def history(conn, cfg, speech, fake_engine):
    """A model, two runs (one deployed, one rejected) and a few items, so every panel has rows."""
    tiny_whisper.build(cfg.model.path)
    for i in range(7):
        database.insert_item(conn, f"reviewed sentence number {i} about the Velmora heater", speech["weather"],
                             is_reviewed=1)
    database.insert_item(conn, "an unreviewed one " * 6, speech["hello"])
    worker.run(jobs.start_record(cfg)["job_id"], cfg)
    for i in range(3):
        database.insert_item(conn, f"another reviewed sentence {i}", speech["weather"], is_reviewed=1)
    fake_engine.wer = (0.2, 0.6)
    worker.run(jobs.start_record(cfg)["job_id"], cfg)


def assert_fits(page, name: str) -> None:
    scroll = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / f"{name}-390.png"), full_page=True)
        for i, panel in enumerate(page.locator("section.panel:visible").all()):
            panel.screenshot(path=str(Path(SHOTS) / f"{name}-390-panel{i}.png"))
    assert scroll[0] <= scroll[1], f"{name} scrolls sideways: {scroll[0]} px wide in a {scroll[1]} px screen"
    assert page.evaluate(OFF_SCREEN) == [], f"{name}: controls off screen"


def test_dashboard_fits_a_phone(phone, history):
    phone.goto("/")
    expect(phone.locator("#runs-body tr")).to_have_count(2)
    expect(phone.locator("#versions li")).to_have_count(3)
    expect(phone.locator("#items-body tr").first).to_be_visible()
    assert_fits(phone, "dashboard")
    # The outcome of every run and the button of every version are on screen, not cut off.
    for outcome in phone.locator("#runs-body .outcome .badge").all():
        box = outcome.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    button = phone.locator("#versions li button").first
    button.scroll_into_view_if_needed()
    expect(button).to_be_in_viewport()


def test_editor_fits_a_phone(phone, history):
    phone.goto("/editor")
    expect(phone.locator("#d-id")).not_to_be_empty()
    expect(phone.locator("#left-count")).to_be_visible()
    assert_fits(phone, "editor")
    # Nothing in the top bar is cut off: the queue counter gives way to the Progress panel.
    assert phone.evaluate("""() => [...document.querySelectorAll('.topbar > *')].every((n) =>
        n.getBoundingClientRect().right <= document.documentElement.clientWidth)""")
    for control in ("#save-btn", "#next-btn", "#play-btn", "#transcript", "#reviewed"):
        locator = phone.locator(control)
        if locator.count():
            locator.scroll_into_view_if_needed()
            expect(locator).to_be_in_viewport()


def test_find_and_replace_preview_wraps_words_on_a_phone(phone, history, conn, speech):
    """Issue: at 390 px the preview broke words letter by letter."""
    database.insert_item(conn, "please call jon about the boat tomorrow morning before the market opens",
                         speech["hello"])
    phone.goto("/")
    phone.fill("#bulk-find", "jon")
    phone.fill("#bulk-replace", "Jonathan")
    phone.click("#bulk-preview-btn")
    diff = phone.locator("#bulk-matches .bulk-diff").first
    expect(diff).to_contain_text("Jonathan")
    # Each word keeps to one line: no word box is narrower than its text, and the diff is as wide as it may be.
    heights = phone.evaluate("""() =>
        [...document.querySelectorAll('#bulk-matches .bulk-diff ins, #bulk-matches .bulk-diff del')]
        .map((n) => n.getClientRects().length)""")
    assert heights and max(heights) == 1, heights
    assert diff.bounding_box()["width"] > 200
    assert_fits(phone, "bulk")


def test_the_training_progress_and_the_chart_legend_fit_a_phone(phone, history):
    """Issue: at 390 px the progress line was cramped, and a legend symbol ended a line apart from its words."""
    phone.goto("/")
    expect(phone.locator("#runs-body tr")).to_have_count(2)
    phone.evaluate("""() => {
        document.getElementById('train-progress').hidden = false;
        document.getElementById('train-phase').textContent = 'Checking the model on held-out speech';
        document.getElementById('train-percent').textContent = '64%';
        document.getElementById('train-step').textContent = 'step 41 of 64';
        document.getElementById('train-loss').textContent = 'loss 0.412';
        document.getElementById('train-eta').textContent = 'about 2 min left';
    }""")
    assert_fits(phone, "progress")
    boxes = {n: phone.locator(f"#{n}").bounding_box()
             for n in ("train-step", "train-loss", "train-eta", "train-cancel")}
    assert boxes["train-cancel"]["y"] > max(boxes[n]["y"] + boxes[n]["height"] - 1
                                            for n in boxes if n != "train-cancel")
    assert all(phone.evaluate("(n) => document.getElementById(n).getClientRects().length", n) == 1 for n in boxes)
    lines = phone.evaluate("() => [...document.querySelectorAll('.chart-legend .legend-key')]"
                           ".map((n) => n.getClientRects().length)")
    assert lines and set(lines) == {1}, lines  # each symbol on the line of its words
