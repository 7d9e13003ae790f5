"""Transcripts in the CSV files a spreadsheet may open (an export's `metadata.csv`).

Excel, LibreOffice and Google Sheets run a cell that starts with `=`, `+`, `-` or `@` (or a tab or a
carriage return before one) as a formula, so a transcript such as `=HYPERLINK(...)` or `-5 degrees`
would be run or mangled. Such a cell is written with a leading `'`, which spreadsheets read as "text",
as OWASP's advice on CSV injection has it; the importer takes that quote off again, so an export read
back gives the same transcripts. A cell that already starts with quotes before such a character gets
one more, so the round trip holds for it too, while "'twas" is written and read as it is.
"""
from __future__ import annotations

import re

_RUNS_AS_FORMULA = re.compile(r"'*[=+\-@\t\r]")
_WRITTEN_SAFE = re.compile(r"'+[=+\-@\t\r]")


def for_spreadsheet(text: str | None) -> str | None:
    return f"'{text}" if isinstance(text, str) and _RUNS_AS_FORMULA.match(text) else text


def from_spreadsheet(text: str) -> str:
    return text[1:] if _WRITTEN_SAFE.match(text) else text
