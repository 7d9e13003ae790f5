# Installs what the tests need into .venv, then runs them. Arguments go to pytest, e.g.:  .\run_tests.ps1 -k editor
# The browser tests need Chromium or Chrome: set $env:S2S_CHROMIUM to chrome.exe. espeak-ng must be installed.
# If PowerShell refuses to run scripts, run it as:  powershell -ExecutionPolicy Bypass -File .\run_tests.ps1
$ErrorActionPreference = "Stop"
Set-Location -Path $PSScriptRoot
. (Join-Path $PSScriptRoot "scripts\find_python.ps1")

& $PythonExe @PythonArgs (Join-Path $PSScriptRoot "scripts\setup.py") --test
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }

# Lint first (rules in pyproject.toml), as run_tests.sh does.
& (Join-Path $PSScriptRoot ".venv\Scripts\python.exe") -m ruff check --quiet .
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }

& (Join-Path $PSScriptRoot ".venv\Scripts\python.exe") -m pytest @args
exit $LASTEXITCODE
