#!/usr/bin/env bash
# Installs what the tests need (Python packages, chromium, espeak-ng), then runs them.
# Arguments go to pytest, e.g.:  ./run_tests.sh -k editor
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh --test
exec .venv/bin/python -m pytest "$@"
