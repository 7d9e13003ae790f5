"""Before Train, the dashboard says how the transcripts to train on are written, since the model learns it
(issue 34: after training the assistant wrote lowercase, without punctuation, "eight thirty" for "8.30")."""
from __future__ import annotations

from playwright.sync_api import expect

from utils import database, transcript_style

TYPED_FAST = ["set a timer for eight thirty", "call mum at nine", "turn the heating to twenty degrees",
              "whats the weather in leeds", "remind me about the dentist", "play the news"]


def test_the_habits_of_the_reviews_are_named():
    note = transcript_style.summary(TYPED_FAST)["note"]
    assert "without capitals and without punctuation and with numbers as words" in note
    assert transcript_style.summary(["Set a timer for 8:30.", "Call Mum at 9.", "Play the news.", "Hi there.",
                                     "Turn it up.", "What time is it?"])["note"] is None
    assert transcript_style.summary(TYPED_FAST[:3])["note"] is None  # too few to speak of


def test_the_dashboard_says_it_before_train(page, conn, speech):
    for text in TYPED_FAST:
        database.insert_item(conn, text, speech["hello"], is_reviewed=1)
    page.goto("/")
    expect(page.locator("#train-style")).to_contain_text("the model will learn to write that way")
    expect(page.locator("#train-style")).to_contain_text("without capitals")
    style = page.request.get("/api/data/style").json()
    assert style["transcripts"] == len(TYPED_FAST) and style["without_punctuation"] == len(TYPED_FAST)
