"""Writing one benchmark's table into its own section of docs/performance.md, leaving the others alone."""
from __future__ import annotations

import re
from pathlib import Path

TITLE = "# Performance\n\nEach section is written by the benchmark named in it; rerun that script to refresh it.\n"


def write_section(path: Path, heading: str, body: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else TITLE
    section = f"## {heading}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
