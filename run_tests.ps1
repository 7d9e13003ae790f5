# Installs what the tests need into .venv, then runs them. Arguments go to pytest, e.g.:  .\run_tests.ps1 -k editor
# The browser tests need Chromium or Chrome, e.g. $env:S2S_CHROMIUM = "C:\Program Files\Google\Chrome\Application\chrome.exe".
# espeak-ng and sox must be installed (the tests make speech and noise with them).
# If PowerShell refuses to run scripts, run it as:  powershell -ExecutionPolicy Bypass -File .\run_tests.ps1
$ErrorActionPreference = "Stop"
# Back in the folder you started from however the script ends (Ctrl+C included).
Push-Location -Path $PSScriptRoot
try {
    . (Join-Path $PSScriptRoot "scripts\find_python.ps1")
    $python = Join-Path $PSScriptRoot ".venv\Scripts\python.exe"
    & $PythonExe @PythonArgs (Join-Path $PSScriptRoot "scripts\setup.py") --test
    $code = $LASTEXITCODE
    if ($code -eq 0) {
        # Lint first (rules in pyproject.toml), as run_tests.sh does.
        & $python -m ruff check --quiet .
        $code = $LASTEXITCODE
    }
    if ($code -eq 0) {
        & $python -m pytest @args
        $code = $LASTEXITCODE
    }
} finally {
    Pop-Location
}
exit $code
