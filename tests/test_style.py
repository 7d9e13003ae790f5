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


def test_the_editor_says_when_an_edit_changes_only_how_the_words_are_written(page, conn, speech):
    """Issue 34, item 6: the model learns the reviews' style; a change of style alone is named while one types."""
    item_id = database.insert_item(conn, "the bus leaves at eight thirty", speech["weather"])
    page.goto(f"/editor?id={item_id}")
    box, note = page.locator("#transcript"), page.locator("#style-note")
    expect(box).to_have_value("the bus leaves at eight thirty")
    expect(note).to_be_hidden()
    for typed, named in (("The bus leaves at eight thirty.", "capitals and punctuation"),
                         ("the bus leaves at 8.30", "the way numbers are written"),
                         ("the bus leaves at eight thirty!", "punctuation")):
        box.fill(typed)
        expect(note).to_contain_text(f"Only {named} changed, not the words")
    box.fill("the train leaves at eight thirty")  # a word changed: a correction, not a style
    expect(note).to_be_hidden()
