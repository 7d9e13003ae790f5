"""Telling the assistant that the model folder changed: a run deployed a model, or a rollback swapped one in.

The assistant loads its model once and keeps it until told. Two ways, for two kinds of assistant:
- a file beside the model, `<model>.deployed.json` (version, time, fingerprint), replaced atomically
  after every swap, for an assistant that watches it (README: "Telling the assistant");
- a command the user configures ([assistant].on_deploy), run once per swap with the new model's path
  and version in its environment. It is a list of arguments and never a shell string, so nothing from
  the data reaches a shell; it has a time limit, and its exit code and output are kept with the run
  and beside the model, where the dashboard reads them. A command that fails or hangs is reported:
  it never undoes the deploy.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from stt.models import store
from stt.review.transcriber import model_fingerprint
from utils.config import Config
from utils.database import now

# The end of the command's output kept (stdout and stderr together): enough for its error message.
OUTPUT_KEPT = 2000


def deployed_file(model_path: Path) -> Path:
    """What the assistant may watch: it changes once per swap, after the new model is complete in place."""
    return model_path.with_name(model_path.name + ".deployed.json")


def told_file(model_path: Path) -> Path:
    """How the last on_deploy command went, for the dashboard (a rollback has no run to keep it with)."""
    return model_path.with_name(model_path.name + ".told.json")


def announce(cfg: Config) -> dict[str, Any] | None:
    """After a swap: the notice file, then the command if one is configured; returns its outcome, or None."""
    notice = _notice(cfg.model.path)
    try:
        _write(deployed_file(cfg.model.path), notice)
    except OSError as exc:  # a full disk: the deploy stands, and the user learns the assistant may not know
        return {"ok": False, "version": notice["version"], "at": now(),
                "message": f"{deployed_file(cfg.model.path)} could not be written ({exc.strerror or exc}): "
                           "restart the assistant so it loads the new model."}
    if not cfg.assistant.on_deploy:
        return None
    outcome = _run_command(cfg, notice)
    try:
        _write(told_file(cfg.model.path), outcome)
    except OSError:
        pass  # the run's record keeps it too; only the dashboard's line after a rollback is lost
    return outcome


def catch_up(cfg: Config) -> None:
    """At start-up: a swap whose notice was never written (a crash right after it) is announced by file now.
    The command is not run again: an assistant started since has the new model already."""
    version = store.deployed_version(cfg.model.path)
    if version is None or not cfg.model.path.is_dir():
        return
    if (read(deployed_file(cfg.model.path)) or {}).get("version") != version:
        try:
            _write(deployed_file(cfg.model.path), _notice(cfg.model.path))
        except OSError:
            pass  # a read-only model folder: nothing to announce from here


def current(model_path: Path) -> dict[str, Any]:
    """What GET /api/model shows: the notice the assistant can read, and how the last command went."""
    return {"deployed_file": str(deployed_file(model_path)), "deployed": read(deployed_file(model_path)),
            "assistant_told": read(told_file(model_path))}


def read(path: Path) -> dict[str, Any] | None:
    """A JSON object from `path`, or None when it is missing or not one (a hand-edited or truncated file)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _notice(model_path: Path) -> dict[str, Any]:
    return {"version": store.deployed_version(model_path), "path": str(model_path), "deployed_at": now(),
            "fingerprint": model_fingerprint(model_path)}


def _write(path: Path, data: dict[str, Any]) -> None:
    """Whole or not at all: a watcher never reads half a file."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=2), encoding="utf-8")
    os.replace(partial, path)


def _run_command(cfg: Config, notice: dict[str, Any]) -> dict[str, Any]:
    command, limit = list(cfg.assistant.on_deploy), cfg.assistant.on_deploy_timeout_s
    env = {**os.environ, "S2S_MODEL_PATH": notice["path"], "S2S_MODEL_VERSION": notice["version"] or "",
           "S2S_DEPLOYED_FILE": str(deployed_file(cfg.model.path))}
    started, exit_code, problem, output = time.monotonic(), None, None, b""
    try:
        done = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=limit)
        exit_code, output = done.returncode, done.stdout
        if exit_code != 0:
            problem = f"exited with code {exit_code}"
    except subprocess.TimeoutExpired as exc:
        output, problem = exc.stdout or b"", f"did not finish within {limit} s and was stopped"
    except OSError as exc:
        problem = f"could not be started ({exc.strerror or exc})"
    name = Path(command[0]).name
    message = (f"The assistant was told ({name} exited 0)." if problem is None else
               f"Telling the assistant failed: {name} {problem}. The model is deployed; restart the assistant "
               "so it loads it, and check [assistant].on_deploy.")
    return {"command": command, "version": notice["version"], "ok": problem is None, "exit_code": exit_code,
            "output": output.decode("utf-8", errors="replace")[-OUTPUT_KEPT:], "message": message,
            "seconds": round(time.monotonic() - started, 2), "at": now()}
