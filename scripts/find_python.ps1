# Dot-sourced by training_server.ps1 and run_tests.ps1: sets $Python to the command (program, then
# its first arguments) that runs a Python 3.11-3.13 for scripts/setup.py, which checks the version
# itself and says what to do. $env:PYTHON chooses one: a path, or a version for the py launcher ("3.12").
$Python = $null
if ($env:PYTHON) {
    $Python = if ($env:PYTHON -match '^\d+\.\d+$') { @("py", "-$($env:PYTHON)") } else { @($env:PYTHON) }
} elseif (Get-Command py -ErrorAction SilentlyContinue) {
    foreach ($version in "3.11", "3.12", "3.13") {
        # A version the launcher lacks writes to stderr: not an error here, just the next candidate.
        try { & py "-$version" -c "pass" 2>$null } catch { continue }
        if ($LASTEXITCODE -eq 0) { $Python = @("py", "-$version"); break }
    }
    if (-not $Python) { $Python = @("py", "-3") }
} elseif (Get-Command python -ErrorAction SilentlyContinue) {
    $Python = @("python")
} else {
    Write-Host "setup: no Python found; install Python 3.11, 3.12 or 3.13 from https://www.python.org/downloads/"
    exit 2
}
$PythonExe, $PythonArgs = $Python
if ($null -eq $PythonArgs) { $PythonArgs = @() }
