#!/usr/bin/env bash
# Installs what the tests need (Python packages, chromium, espeak-ng, sox), then runs them.
# Arguments go to pytest, e.g.:  ./run_tests.sh -k editor
set -euo pipefail
cd "$(dirname "$0")"
source scripts/find_python.sh
"$python_bin" scripts/setup.py --test
# Lint first (rules in pyproject.toml): a few seconds, and CI checks it because CI runs this script.
.venv/bin/python -m ruff check --quiet .
exec .venv/bin/python -m pytest "$@"
