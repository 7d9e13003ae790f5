"""configs/training.toml and the README's table of settings, written from the settings themselves.

Each setting's default and help live once, in utils/config.py; these two texts are made
from them, so they cannot drift apart (they had: "0 picks a quarter" in the code against
"half of a small encoder" in the README). tests/test_config.py checks that both are current;
`python -m utils.config_reference` writes them again after a setting changes.
"""
from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path
from typing import Any

from utils.config import DEFAULT_CONFIG_FILE, ENV_PREFIX, PROJECT_ROOT, Config

README = PROJECT_ROOT / "README.md"
_HEADER = """\
# S2S Training configuration (written by `python -m utils.config_reference` from utils/config.py).
# Relative paths resolve against the project root (the folder holding main.py),
# not the working directory. Every key can be overridden by an environment
# variable named S2S_<SECTION>_<KEY>, e.g. S2S_DATABASE_PATH or S2S_TRAINING_EPOCHS.
"""
TABLE_HEAD = "| key | default | environment variable | meaning |\n|---|---|---|---|\n"


def settings() -> list[tuple[str, str, Any, str]]:
    """(section, key, default, help) of every setting, in the order the dataclasses declare them."""
    out = []
    for section in dataclasses.fields(Config):
        if section.name == "root":
            continue
        for key in dataclasses.fields(section.default_factory()):
            out.append((section.name, key.name, key.default, key.metadata["help"]))
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        value = value.as_posix()
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def toml_text() -> str:
    """The shipped configuration file: every setting at its default, its help as the comment above it."""
    parts, current = [_HEADER], None
    for section, key, default, help_text in settings():
        if section != current:
            parts.append(f"\n[{section}]\n")
            current = section
        parts.append(textwrap.fill(help_text, 110, initial_indent="# ", subsequent_indent="# ") + "\n")
        parts.append(f"{key} = {_toml_value(default)}\n")
    return "".join(parts)


def readme_table() -> str:
    """The README's table of settings: key, default, environment variable and meaning."""
    rows = []
    for section, key, default, help_text in settings():
        shown = "empty" if default in ("", ()) else f"`{default.as_posix() if isinstance(default, Path) else default}`"
        rows.append(f"| `{section}.{key}` | {shown} | `{ENV_PREFIX}{section.upper()}_{key.upper()}` | "
                    f"{help_text.replace('|', '/')} |\n")
    return TABLE_HEAD + "".join(rows)


def _with_table(readme: str) -> str:
    start = readme.index(TABLE_HEAD)
    end = readme.index("\n\n", start)
    return readme[:start] + readme_table().rstrip("\n") + readme[end:]


def main() -> None:
    DEFAULT_CONFIG_FILE.write_text(toml_text(), encoding="utf-8")
    README.write_text(_with_table(README.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {DEFAULT_CONFIG_FILE} and the settings table in {README}")


if __name__ == "__main__":
    main()
