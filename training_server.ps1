# Installs what is missing, then starts S2S Training (http://127.0.0.1:5000 by default).
# Any arguments go to main.py, e.g.:  .\training_server.ps1 --demo   or   .\training_server.ps1 --db C:\Users\Aspen\Dev\database\database.db
# If PowerShell refuses to run scripts, run it as:  powershell -ExecutionPolicy Bypass -File .\training_server.ps1
# Choose a Python with $env:PYTHON (a path, or a version such as 3.12).
$ErrorActionPreference = "Stop"
# Back in the folder you started from however the script ends (Ctrl+C included).
Push-Location -Path $PSScriptRoot
try {
    . (Join-Path $PSScriptRoot "scripts\find_python.ps1")
    # Every native command's exit code is checked: PowerShell does not stop on a failed program by itself.
    & $PythonExe @PythonArgs (Join-Path $PSScriptRoot "scripts\setup.py")
    $code = $LASTEXITCODE
    if ($code -eq 0) {
        & (Join-Path $PSScriptRoot ".venv\Scripts\python.exe") main.py @args
        $code = $LASTEXITCODE
    }
} finally {
    Pop-Location
}
exit $code
