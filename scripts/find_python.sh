# Sourced by training_server.sh and run_tests.sh: sets $python_bin to a Python 3.11-3.13 to run
# scripts/setup.py with ($PYTHON if set), which checks the version itself and says what to do.
python_bin="${PYTHON:-}"
if [ -z "$python_bin" ]; then
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python_bin="$candidate"; break; fi
  done
fi
if [ -z "$python_bin" ]; then
  echo "setup: no python3 found; install Python 3.11 to 3.13" >&2
  exit 2
fi
