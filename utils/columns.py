"""Reading the assistant's columns whatever it stored in them.

SQLite does not enforce column types, and the assistant is another program: a
transcript may arrive as a BLOB, a number or text that is not valid UTF-8, a flag
as 'yes' or x'01', a timestamp as bytes. One such row used to break the whole
list (JSON cannot hold a BLOB) and every training run. Here every column is read
as the type the seed schema promises, and what was wrong is said in a sentence
(`problem`) that the editor shows beside the item; saving it there repairs the row.

The rules, shared by the SQL below and the Python that reads it:
- a flag is set only when it equals 1 (what the app's own `= 1` filters test);
  anything else reads as not set;
- text columns of another type are read as their text form (CAST ... AS TEXT),
  and such a transcript is not trained on until it is saved as text;
- text that is not valid UTF-8 is decoded with U+FFFD in place of the bad bytes.
"""
from __future__ import annotations

INVALID_TEXT = "\ufffd"


def as_text(column: str) -> str:
    return (f"CASE typeof({column}) WHEN 'text' THEN {column} WHEN 'null' THEN NULL "
            f"ELSE CAST({column} AS TEXT) END")


def as_flag(column: str) -> str:
    return f"(CASE WHEN {column} = 1 THEN 1 ELSE 0 END)"


def _odd_flag(column: str, reads_as: str) -> str:
    # quote() shows what is there ('yes', X'01', 0.5), cut short: it lands in a sentence.
    return (f"WHEN {column} IS NOT NULL AND {column} NOT IN (0, 1) THEN "
            f"'{column.split('.')[-1]} holds ' || substr(quote({column}), 1, 24) || ', which reads as {reads_as}. '")


def problem(alias: str = "d") -> str:
    """SQL for the sentence saying what is wrong with a row's types, or NULL when nothing is."""
    t, r, tr, ts = (f"{alias}.{c}" for c in ("transcript", "is_reviewed", "is_trained", "timestamp"))
    return ("nullif(" + " || ".join([
        f"CASE WHEN typeof({t}) NOT IN ('text', 'null') THEN 'The transcript is stored as ' || typeof({t}) || "
        "', not text: it is not trained on until you save it here. ' ELSE '' END",
        f"CASE {_odd_flag(r, 'not reviewed')} ELSE '' END",
        f"CASE {_odd_flag(tr, 'not trained')} ELSE '' END",
        f"CASE WHEN typeof({ts}) NOT IN ('text', 'null', 'integer', 'real') THEN "
        "'The timestamp is stored as ' || typeof(" + ts + ") || ', not a date. ' ELSE '' END",
    ]) + ", '')")


def valid_utf8(raw: bytes | None) -> bool:
    """The SQL function s2s_valid_utf8 (utils/database.connect), called with the column cast to a BLOB:
    whether the bytes are UTF-8, so a transcript that is not counts as unusable, never as pending."""
    try:
        bytes(raw or b"").decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def lenient_text(raw: bytes) -> str:
    """sqlite3's text_factory: invalid UTF-8 becomes U+FFFD instead of an exception on every read of the row."""
    return raw.decode("utf-8", "replace")


def text_problem(transcript: str | None) -> str | None:
    """What SQL cannot see: text that was not valid UTF-8 (see lenient_text)."""
    if transcript and INVALID_TEXT in transcript:
        return ("The transcript is not valid UTF-8 text (shown with \ufffd where bytes could not be read): "
                "it is not trained on until you correct and save it here. ")
    return None
