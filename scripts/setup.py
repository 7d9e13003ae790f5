"""Install what S2S Training needs into .venv; with --test, what the tests need too.

One script for every platform, called by training_server.sh / .ps1 and
run_tests.sh / .ps1, so the Linux and Windows set-ups cannot drift apart.
Only the standard library is used: it runs before the virtual environment
exists. Safe to run again: each step is skipped when already done.

    python scripts/setup.py            # the app
    python scripts/setup.py --test     # the app and its tests
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
SUPPORTED = ((3, 11), (3, 13))  # tomllib arrives in 3.11; torch 2.13.0 has wheels up to 3.13
# Debian packages: espeak-ng speaks the demo and test clips, libsndfile decodes audio,
# chromium and sox are for the tests.
DEBIAN_APP, DEBIAN_TEST = ["espeak-ng", "libsndfile1"], ["chromium", "sox"]


class SetupError(RuntimeError):
    """A step failed; the message says which and what to do."""


def check_python() -> None:
    low, high = SUPPORTED
    if not low <= sys.version_info[:2] <= high:
        raise SetupError(f"S2S Training needs Python {low[0]}.{low[1]} to {high[0]}.{high[1]}; this is "
                         f"{sys.version.split()[0]} ({sys.executable}). Install one of those, or choose it: "
                         "PYTHON=python3.12 ./training_server.sh, or in PowerShell: "
                         "$env:PYTHON = \"3.12\"; .\\training_server.ps1")


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def debian_packages(want_tests: bool) -> None:
    """Install missing Debian packages with apt where there is apt; elsewhere say what is missing."""
    wanted = DEBIAN_APP + (DEBIAN_TEST if want_tests else [])
    if shutil.which("dpkg") is None:
        if os.name != "nt" and shutil.which("espeak-ng") is None:
            print("setup: please install espeak-ng (and libsndfile) with your system's package manager",
                  file=sys.stderr)
        return
    missing = [p for p in wanted if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0]
    if not missing:
        return
    if shutil.which("apt-get") is None:
        print(f"setup: please install these system packages yourself: {' '.join(missing)}", file=sys.stderr)
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    print(f"setup: installing Debian packages: {' '.join(missing)}")
    run([*sudo, "apt-get", "update", "-qq"], "apt-get update")
    run([*sudo, "apt-get", "install", "-y", "-qq", *missing], "apt-get install",
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def windows_espeak() -> None:
    """The espeak-ng installer may leave it off PATH; the demo looks in its install folder too (utils/demo.py)."""
    if os.name == "nt" and shutil.which("espeak-ng") is None and not any(
            (Path(os.environ.get(v, "")) / "eSpeak NG" / "espeak-ng.exe").is_file()
            for v in ("ProgramFiles", "ProgramFiles(x86)")):
        print("note: espeak-ng is not installed; the demo needs it "
              "(https://github.com/espeak-ng/espeak-ng/releases, the .msi installer).")


def python_packages(want_tests: bool) -> None:
    if not venv_python().is_file():
        print(f"setup: creating {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    requirements = ROOT / ("requirements_test.txt" if want_tests else "requirements_training.txt")
    stamp = VENV / f".installed-{requirements.stem}"
    newest = max(requirements.stat().st_mtime, (ROOT / "requirements_training.txt").stat().st_mtime)
    if stamp.is_file() and stamp.stat().st_mtime >= newest:
        return
    print(f"setup: installing Python packages from {requirements.name}")
    python = str(venv_python())
    run([python, "-m", "pip", "install", "-q", "--upgrade", "pip"], "upgrading pip")
    run([python, "-m", "pip", "install", "-q", "-r", str(requirements)], f"pip install -r {requirements.name}")
    stamp.touch()


def run(command: list[str], what: str, env: dict[str, str] | None = None) -> None:
    if subprocess.run(command, cwd=ROOT, env=env).returncode != 0:
        raise SetupError(f"{what} failed (see the lines above); fix that and run the command again")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Install what S2S Training (and with --test, its tests) needs.")
    parser.add_argument("--test", action="store_true", help="also install what the tests need")
    args = parser.parse_args(argv)
    try:
        check_python()
        debian_packages(args.test)
        windows_espeak()
        python_packages(args.test)
    except SetupError as exc:
        print(f"setup: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
