"""The README stays true: its layout names every Python module of the app, and CI runs its test command."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_the_layout_names_every_module():
    layout = README[README.index("## Layout"):]
    missing = []
    for package in ("training", "utils", "stt"):
        for module in sorted((ROOT / package).rglob("*.py")):
            if module.name == "__init__.py" and module.parent.name != "ordinary":
                continue
            shown = module.parent.name + "/" if module.name == "__init__.py" else module.name
            if shown not in layout:
                missing.append(str(module.relative_to(ROOT)))
    assert missing == [], f"README's Layout does not mention: {missing}"


def test_ci_runs_the_readme_test_command():
    assert "./run_tests.sh" in README
    assert "bash run_tests.sh" in (ROOT / ".ci" / "run").read_text()
