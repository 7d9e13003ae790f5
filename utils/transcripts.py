"""What a transcript may hold: the one rule that the API, the editor and imports share.

C0 controls other than tab/newline/carriage return, DEL, C1 controls (U+0085, U+009B, ...),
bidirectional overrides and isolates (which make the text read differently from what it holds),
and lone surrogates (from invalid UTF-8 escapes) have no place in a transcript and break tokenizers.
The editor holds at most MAX_CHARS, so a longer transcript could never be saved again there.
"""
from __future__ import annotations

import re
import unicodedata

MAX_CHARS = 10_000
BAD_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def cleaned(text: str) -> tuple[str, int]:
    """The text without the characters BAD_CHARS names, and how many were removed."""
    out, removed = BAD_CHARS.subn("", text)
    return out, removed


def folded(text: str) -> str:
    """The text as a search compares it: without accents and case-folded, so "istanbul" finds
    "İstanbul" and "emile" finds "Émile" (NFKD splits the marks off their letters; casefold, not
    lower, also folds "ß" to "ss")."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
