# Installs what is missing, then starts S2S Training (http://127.0.0.1:5000 by default).
# Any arguments go to main.py, e.g.:  .\training_server.ps1 --demo   or   .\training_server.ps1 --db C:\Users\Aspen\Dev\database\database.db
$ErrorActionPreference = "Stop"
Set-Location -Path $PSScriptRoot

$python = Join-Path $PSScriptRoot ".venv\Scripts\python.exe"
if (-not (Test-Path $python)) {
    Write-Host "setup: creating .venv"
    if (Get-Command py -ErrorAction SilentlyContinue) { py -3.11 -m venv .venv } else { python -m venv .venv }
}

$requirements = Join-Path $PSScriptRoot "requirements_training.txt"
$stamp = Join-Path $PSScriptRoot ".venv\.installed-requirements_training"
if (-not (Test-Path $stamp) -or ((Get-Item $requirements).LastWriteTime -gt (Get-Item $stamp).LastWriteTime)) {
    Write-Host "setup: installing Python packages from requirements_training.txt"
    & $python -m pip install -q --upgrade pip
    & $python -m pip install -q -r $requirements
    if ($LASTEXITCODE -ne 0) { throw "pip install failed" }
    New-Item -ItemType File -Force -Path $stamp | Out-Null
}

if (-not (Get-Command espeak-ng -ErrorAction SilentlyContinue)) {
    Write-Host "note: espeak-ng is not installed; 'python main.py demo' needs it (https://github.com/espeak-ng/espeak-ng/releases)."
}

& $python main.py @args
exit $LASTEXITCODE
