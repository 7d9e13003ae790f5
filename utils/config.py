"""Configuration: `configs/training.toml`, overridden by `S2S_<SECTION>_<KEY>` environment variables.

Every setting has a default here, so the app starts with no config file at all
(on an embedded SQLite database under `data/`). Values are checked against the
default's type so a typo gives a one-line error naming the key instead of a
crash deep inside a request.
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_FILE = PROJECT_ROOT / "configs" / "training.toml"
ENV_PREFIX = "S2S_"


class ConfigError(ValueError):
    """A setting is missing, mistyped or out of range; the message names the key."""


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 5000
    # Required when binding to anything but loopback; every request must then carry it.
    access_token: str = ""


@dataclass
class DatabaseConfig:
    path: Path = Path("data/database.db")
    busy_timeout_ms: int = 5000


@dataclass
class ModelConfig:
    path: Path = Path(".models/stt/distil-small.en")


@dataclass
class AudioConfig:
    pcm_sample_rate: int = 16000
    pcm_sample_format: str = "s16le"
    pcm_channels: int = 1
    # Longest recording decoded (playback, waveform, transcription, training): bounds memory
    # against compressed audio that inflates to gigabytes. A voice assistant's clips are seconds.
    max_duration_s: float = 300.0


@dataclass
class TrainingConfig:
    mode: str = "auto"
    # Measured on tiny.en (docs/performance.md, "Choosing the defaults"): the setting that cut
    # held-out WER most while WER on ordinary speech fell, over three seeds; at 7e-5 ordinary
    # speech already got worse than at 5e-5, at twice the rate it no longer fell, at four times
    # it nearly doubled. At 5e-5, 8 epochs beat 5 on held-out and ordinary speech alike.
    learning_rate: float = 5e-5
    epochs: int = 8
    # The stop before memorisation (stt/finetune/loop.py): after each epoch the loss of what the run
    # measures but never trains on is computed; the run keeps the weights of the epoch where it was
    # lowest and ends after this many epochs without a new low. 0 trains every epoch and keeps the last.
    patience: int = 2
    # Then the kept epoch is blended with the model the run started from, at the share of the trained change
    # (tried from half to all) whose loss on the same sets is lowest (stt/finetune/loop.py). Needs patience > 0.
    blend: bool = True
    batch_size: int = 8
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    seed: int = 42
    heldout_fraction: float = 0.1
    heldout_min: int = 3
    wer_tolerance: float = 0.0
    # A set that got worse blocks a deploy only if it got worse in this share of bootstrap
    # resamples of its clips (stt/finetune/deploy_rule.py): one word among a handful is noise, not a verdict.
    deploy_confidence: float = 0.95
    # Earlier runs' items trained on again beside the new ones (up to two per new item, at most
    # this many), so a second round does not erase the first; 0 turns it off.
    rehearsal_max: int = 200
    # The built-in ordinary English speech (stt/finetune/ordinary): rehearsed in every run, and a deploy
    # check while there are fewer than 20 regression checks of your own.
    builtin_speech: bool = True
    # After a run deploys a model (or a rollback), the web app transcribes the unreviewed items again with
    # it in the background, so "order by disagreement" and the suggestions follow the model the assistant runs.
    rescore_after_deploy: bool = True
    versions_kept: int = 3
    # Encoder layers trained in mode "adapt" (the top ones); 0 picks half of a small encoder, a quarter
    # of a larger one (stt/finetune/encoder_states.py).
    adapt_layers: int = 0
    # Rank of the LoRA adapters (mode "lora" only).
    lora_r: int = 32
    # Gradients are clipped to this global norm: a few odd clips cannot throw the model off.
    max_grad_norm: float = 1.0
    # Threads for training; 0 means every core.
    num_threads: int = 0
    # A folder of ordinary speech (<name>.wav + <name>.txt) whose WER must not rise for a model to deploy.
    regression_dir: str = ""


@dataclass
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    # Where relative paths were resolved from; kept so derived folders (model
    # versions, job logs) land beside the configured ones.
    root: Path = PROJECT_ROOT


def _strong(token: str) -> bool:
    """Hard enough to guess over the network with wrong tries slowed down (training/src/throttle.py):
    twelve spaces or "aaaaaaaaaaaa" are not."""
    return len(token) >= 12 and not any(c.isspace() for c in token) and len(set(token)) >= 8


# "auto" picks adapt on a CPU and full on CUDA (stt.finetune.engine.resolve_mode).
TRAINING_MODES = ("auto", "adapt", "decoder", "full", "lora")
_SECRETS = {"server.access_token"}
# Checks beyond the type, keyed "section.key": (predicate, what a valid value is).
_RULES: dict[str, tuple[Any, str]] = {
    "server.port": (lambda v: 0 <= v <= 65535, "a port number 0-65535"),
    "server.access_token": (lambda v: v == "" or _strong(v),
                            "empty, or a token of at least 12 characters, no spaces, at least 8 of them different "
                            "(make one with: python -c \"import secrets; print(secrets.token_urlsafe(24))\")"),
    "database.busy_timeout_ms": (lambda v: v >= 0, "a non-negative number of milliseconds"),
    "audio.pcm_sample_rate": (lambda v: 1000 <= v <= 384000, "a sample rate in Hz (1000-384000)"),
    "audio.pcm_sample_format": (lambda v: v in {"s16le", "s32le", "f32le", "u8"}, "one of s16le, s32le, f32le, u8"),
    "audio.pcm_channels": (lambda v: 1 <= v <= 8, "a channel count 1-8"),
    "audio.max_duration_s": (lambda v: 1 <= v <= 24 * 3600, "a number of seconds, 1 to 86400"),
    "training.mode": (lambda v: v in TRAINING_MODES, "one of " + ", ".join(TRAINING_MODES)),
    "training.adapt_layers": (lambda v: 0 <= v <= 64, "a layer count 0-64 (0: half of a small encoder, a quarter of a larger one)"),
    "training.learning_rate": (lambda v: 0 < v < 1, "a learning rate between 0 and 1"),
    "training.epochs": (lambda v: 1 <= v <= 1000, "a whole number of epochs 1-1000"),
    "training.patience": (lambda v: 0 <= v <= 1000, "a whole number of epochs 0-1000 (0 turns the stop off)"),
    "training.batch_size": (lambda v: 1 <= v <= 1024, "a batch size 1-1024"),
    "training.warmup_ratio": (lambda v: 0 <= v < 1, "a fraction 0-1"),
    "training.weight_decay": (lambda v: 0 <= v < 1, "a fraction 0-1"),
    "training.heldout_fraction": (lambda v: 0 <= v < 1, "a fraction 0-1"),
    "training.heldout_min": (lambda v: v >= 0, "a non-negative count"),
    "training.wer_tolerance": (lambda v: 0 <= v <= 1, "an absolute WER tolerance 0-1"),
    "training.deploy_confidence": (lambda v: 0.5 <= v <= 1, "a share 0.5-1"),
    "training.rehearsal_max": (lambda v: v >= 0, "a non-negative count"),
    "training.versions_kept": (lambda v: v >= 1, "a count of at least 1"),
    "training.lora_r": (lambda v: 1 <= v <= 1024, "a LoRA rank 1-1024"),
    "training.max_grad_norm": (lambda v: v > 0, "a positive gradient norm"),
    "training.num_threads": (lambda v: 0 <= v <= 1024, "a thread count 0-1024 (0: every core)"),
}


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Turn a TOML or environment value into the default's type, or raise ConfigError."""
    kind = type(default)
    try:
        if isinstance(default, Path):
            if not isinstance(value, (str, Path)) or not str(value).strip():
                raise TypeError
            return Path(value)
        if kind is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in {"1", "true", "yes", "0", "false", "no"}:
                return value.lower() in {"1", "true", "yes"}
            raise TypeError
        if kind is int:
            if isinstance(value, bool):
                raise TypeError
            if isinstance(value, str):
                return int(value.strip())
            if isinstance(value, int):
                return value
            raise TypeError
        if kind is float:
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if kind is str:
            if not isinstance(value, str):
                raise TypeError
            return value
    except (TypeError, ValueError):
        pass
    else:
        return value
    expected = "a path" if isinstance(default, Path) else kind.__name__
    raise ConfigError(f"config key {key}: expected {expected}, got {value!r}")


def _apply(cfg: Config, data: Mapping[str, Any], source: str) -> None:
    sections = {f.name for f in dataclasses.fields(cfg) if f.name != "root"}
    for section, values in data.items():
        if section not in sections:
            raise ConfigError(f"config section [{section}] in {source} is unknown (known: {', '.join(sorted(sections))})")
        if not isinstance(values, Mapping):
            raise ConfigError(f"config key {section} in {source} must be a table")
        target = getattr(cfg, section)
        known = {f.name for f in dataclasses.fields(target)}
        for key, value in values.items():
            if key not in known:
                raise ConfigError(f"config key {section}.{key} in {source} is unknown (known: {', '.join(sorted(known))})")
            setattr(target, key, _coerce(f"{section}.{key}", value, getattr(target, key)))


def _env_overrides(cfg: Config, environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Collect S2S_<SECTION>_<KEY> variables; section names hold no underscore, so the split is unambiguous."""
    found: dict[str, dict[str, str]] = {}
    for f in dataclasses.fields(cfg):
        if f.name == "root":
            continue
        for sub in dataclasses.fields(getattr(cfg, f.name)):
            name = f"{ENV_PREFIX}{f.name.upper()}_{sub.name.upper()}"
            if name in environ:
                found.setdefault(f.name, {})[sub.name] = environ[name]
    return found


def load_config(
    path: Path | str | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Config:
    """Build the configuration: defaults < TOML file < environment < explicit overrides (CLI flags).

    `path` None means `configs/training.toml` if it exists. A path given
    explicitly must exist. Relative paths in the result are made absolute
    against the project root so the app behaves the same from any directory.
    """
    cfg = Config()
    environ = os.environ if environ is None else environ
    file = Path(path) if path is not None else DEFAULT_CONFIG_FILE
    if path is not None and not file.is_file():
        raise ConfigError(f"config file {file} does not exist")
    if file.is_file():
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {file} is not valid TOML: {exc}") from None
        _apply(cfg, data, str(file))
    _apply(cfg, _env_overrides(cfg, environ), "the environment")
    if overrides:
        _apply(cfg, {k: v for k, v in overrides.items() if v}, "the command line")
    _validate(cfg)
    cfg.database.path = _absolute(cfg.database.path, cfg.root)
    cfg.model.path = _absolute(cfg.model.path, cfg.root)
    return cfg


def embedded_database(cfg: Config) -> Path:
    """The database the app keeps when none is configured: the only one it creates unasked,
    so a mistyped path stops with an error instead of becoming a new empty database."""
    return _absolute(DatabaseConfig.path, cfg.root)


def _absolute(path: Path, root: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else (root / path).resolve()


def _validate(cfg: Config) -> None:
    for dotted, (ok, expected) in _RULES.items():
        section, key = dotted.split(".")
        value = getattr(getattr(cfg, section), key)
        if not ok(value):
            # A secret is never echoed: the message lands in terminals, logs and screenshots.
            got = f"{len(value)} characters" if dotted in _SECRETS else repr(value)
            raise ConfigError(f"config key {dotted}: expected {expected}, got {got}")
