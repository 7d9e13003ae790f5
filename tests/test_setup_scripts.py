"""The set-up every start script shares: scripts/setup.py, and the scripts that call it.

PowerShell cannot run on the test machines, so the Windows scripts are read:
they must call the one Python set-up (so the platforms cannot drift) and check
every native command's exit code (PowerShell does not stop on a failed program).
"""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("project_setup", ROOT / "scripts" / "setup.py")
project_setup = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(project_setup)


def test_a_python_outside_the_supported_range_is_one_clear_line(monkeypatch):
    monkeypatch.setattr(sys, "version_info", (3, 10, 12, "final", 0))
    with pytest.raises(project_setup.SetupError, match="needs Python 3.11 to 3.13") as refused:
        project_setup.check_python()
    # The fix it names exists: the Windows script takes its Python from $env:PYTHON (it has no parameters).
    assert '$env:PYTHON = "3.12"; .\\training_server.ps1' in str(refused.value)
    assert "$env:PYTHON" in (ROOT / "scripts" / "find_python.ps1").read_text()
    assert "param(" not in (ROOT / "training_server.ps1").read_text().lower()


def test_setup_is_quiet_when_everything_is_installed():
    done = subprocess.run([sys.executable, "scripts/setup.py", "--test"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "installing" not in done.stdout  # run_tests.sh just did it: nothing left to do


@pytest.mark.parametrize("script", ["training_server.ps1", "run_tests.ps1"])
def test_windows_scripts_share_the_setup_and_check_every_exit_code(script):
    text = (ROOT / script).read_text()
    assert "scripts\\setup.py" in text and "find_python.ps1" in text and "ExecutionPolicy Bypass" in text
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    for i, line in enumerate(lines):
        if line.startswith("& "):
            assert lines[i + 1] == "$code = $LASTEXITCODE", f"{script}: unchecked: {line}"
    assert "py -3.11" not in text
    # The prompt is back where the user was however the script ends (Ctrl+C runs the finally block).
    assert "Push-Location" in text and "finally {" in text and "Pop-Location" in text and "Set-Location" not in text
    assert lines[-1] == "exit $code"


@pytest.mark.parametrize("script", ["training_server.sh", "run_tests.sh"])
def test_linux_scripts_share_the_setup(script):
    text = (ROOT / script).read_text()
    assert re.search(r'"\$python_bin" scripts/setup\.py', text) and "set -euo pipefail" in text
