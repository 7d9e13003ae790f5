"""Configuration: defaults, the TOML file, environment overrides and one-line errors naming the key."""
from __future__ import annotations

from pathlib import Path

import pytest

from utils.config import DEFAULT_CONFIG_FILE, PROJECT_ROOT, ConfigError, load_config


def test_defaults_resolve_against_project_root_not_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(environ={})
    assert cfg.database.path == PROJECT_ROOT / "data" / "database.db"
    assert cfg.model.path == PROJECT_ROOT / ".models" / "stt" / "distil-small.en"
    assert cfg.server.host == "127.0.0.1" and cfg.server.port == 5000


def test_file_then_environment_then_overrides(tmp_path):
    file = tmp_path / "c.toml"
    file.write_text('[server]\nport = 6000\n[training]\nepochs = 5\n[database]\npath = "/x/db.db"\n')
    cfg = load_config(file, environ={"S2S_SERVER_PORT": "7000", "S2S_TRAINING_LEARNING_RATE": "0.0001"})
    assert cfg.server.port == 7000
    assert cfg.training.epochs == 5 and cfg.training.learning_rate == 0.0001
    assert cfg.database.path == Path("/x/db.db")
    cfg = load_config(file, environ={"S2S_SERVER_PORT": "7000"}, overrides={"server": {"port": 8000}})
    assert cfg.server.port == 8000


@pytest.mark.parametrize("text, key", [
    ('[server]\nport = "abc"\n', "server.port"),
    ("[server]\nport = 70000\n", "server.port"),
    ('[training]\nmode = "turbo"\n', "training.mode"),
    ("[training]\nlearning_rate = 0\n", "training.learning_rate"),
    ('[audio]\npcm_sample_format = "mp3"\n', "audio.pcm_sample_format"),
    ("[database]\npaht = 'x'\n", "database.paht"),
])
def test_bad_values_name_the_key(tmp_path, text, key):
    file = tmp_path / "c.toml"
    file.write_text(text)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(file, environ={})


def test_bad_environment_value_names_the_key():
    with pytest.raises(ConfigError, match=r"training\.epochs"):
        load_config(environ={"S2S_TRAINING_EPOCHS": "many"})


def test_unknown_section_and_invalid_toml(tmp_path):
    file = tmp_path / "c.toml"
    file.write_text("[nonsense]\na = 1\n")
    with pytest.raises(ConfigError, match="nonsense"):
        load_config(file, environ={})
    file.write_text("[server\n")
    with pytest.raises(ConfigError, match="not valid TOML") as refused:
        load_config(file, environ={})
    assert "single quotes" not in str(refused.value)  # the hint only where it helps


@pytest.mark.parametrize("path", [r"C:\Users\Aspen\Dev\database.db", r"C:\new\x.db"])
def test_a_windows_path_in_double_quotes_says_to_use_single_ones(tmp_path, path):
    file = tmp_path / "c.toml"
    file.write_text(f'[database]\npath = "{path}"\n')
    with pytest.raises(ConfigError, match="single quotes"):
        load_config(file, environ={})
    file.write_text(f"[database]\npath = '{path}'\n")
    assert str(load_config(file, environ={}).database.path).endswith(path.rsplit("\\", 1)[-1])


def test_missing_explicit_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "none.toml", environ={})


def test_shipped_config_loads():
    cfg = load_config(PROJECT_ROOT / "configs" / "training.toml", environ={})
    assert cfg.training.mode == "auto"


@pytest.mark.parametrize("argv", [
    ["--port", "5077", "--host", "127.0.0.2", "--db", "x.db", "serve"],
    ["serve", "--port", "5077", "--host", "127.0.0.2", "--db", "x.db"],
    ["--port", "5077", "--host", "127.0.0.2", "--db", "x.db"],
])
def test_command_line_flags_count_before_or_after_the_command(argv):
    import main

    args = main._parser().parse_args(argv)
    cfg = main._config(args)
    assert (cfg.server.port, cfg.server.host, cfg.database.path.name) == (5077, "127.0.0.2", "x.db")
    assert getattr(args, "demo", False) is False


def test_the_config_file_and_the_readme_are_written_from_the_settings():
    """Each setting's default and help live once (utils/config.py); after changing one, run
    `python -m utils.config_reference` to write configs/training.toml and the README's table again."""
    from utils import config_reference

    assert DEFAULT_CONFIG_FILE.read_text(encoding="utf-8") == config_reference.toml_text()
    assert config_reference.readme_table() in config_reference.README.read_text(encoding="utf-8")
    assert load_config(DEFAULT_CONFIG_FILE, environ={}) == load_config(environ={})  # the file says the defaults
