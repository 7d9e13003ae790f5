#!/usr/bin/env bash
# Installs what is missing, then starts S2S Training (http://127.0.0.1:5000 by default).
# Any arguments go to main.py, e.g.:  ./training_server.sh --demo   or   ./training_server.sh --port 8080
set -euo pipefail
cd "$(dirname "$0")"
source scripts/find_python.sh
"$python_bin" scripts/setup.py
exec .venv/bin/python main.py "$@"
