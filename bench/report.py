"""Writing one benchmark's table into its own section of docs/performance.md, leaving the others alone."""
from __future__ import annotations

import datetime
import os
import platform
import re
import sys
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

DOC = Path(__file__).resolve().parent.parent / "docs" / "performance.md"


def publish(lines: list[str], path: Path, heading: str) -> None:
    """Print a benchmark's section and write it into its document."""
    table = "\n".join(lines)
    print("\n" + table)
    write_section(path, heading, table)


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process; None where `resource` is missing (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def machine() -> str:
    """The date and the machine a benchmark ran on, for the sentence above its table."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    load = f", 1-minute load average {os.getloadavg()[0]:.1f} at the start" if hasattr(os, "getloadavg") else ""
    return (f"{datetime.date.today().isoformat()}, {platform.machine()} with {os.cpu_count()} cores, {gpu}, "
            f"Python {platform.python_version()}, torch {torch.__version__}{load}")
