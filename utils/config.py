"""Configuration: `configs/training.toml`, overridden by `S2S_<SECTION>_<KEY>` environment variables.

Every setting has a default here, so the app starts with no config file at all
(on an embedded SQLite database under `data/`). Values are checked against the
default's type so a typo gives a one-line error naming the key instead of a
crash deep inside a request.
"""
from __future__ import annotations

import dataclasses
import os
import shlex
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_FILE = PROJECT_ROOT / "configs" / "training.toml"
ENV_PREFIX = "S2S_"


class ConfigError(ValueError):
    """A setting is missing, mistyped or out of range; the message names the key."""


def setting(default: Any, help: str, valid: tuple[Callable[[Any], bool], str] | None = None,
            secret: bool = False) -> Any:
    """One setting, in one place: its default, its help (the comment above it in configs/training.toml and
    its row in the README, both written from here by utils/config_reference.py), and, where its type says
    too little, the check a value must pass with how a valid one reads. A secret is never echoed."""
    return field(default=default, metadata={"help": help, "valid": valid, "secret": secret})


def _strong(token: str) -> bool:
    """Hard enough to guess over the network with wrong tries slowed down (training/src/throttle.py):
    twelve spaces, "aaaaaaaaaaaa", "abcabcabcabc" and "0123456789ab" are not."""
    return (len(token) >= 12 and not any(c.isspace() for c in token) and len(set(token)) >= 8
            and not _repeats(token) and _in_runs(token) * 2 <= len(token))


def _repeats(token: str) -> bool:
    """One piece written over and over."""
    return any(len(token) % k == 0 and token == token[:k] * (len(token) // k) for k in range(1, len(token) // 2 + 1))


def _in_runs(token: str) -> int:
    """Characters in runs of three or more that step up or down by one ("456", "fed")."""
    steps = [ord(b) - ord(a) for a, b in zip(token, token[1:])]
    covered: set[int] = set()
    for i in range(len(steps) - 1):
        if abs(steps[i]) == 1 and steps[i] == steps[i + 1]:
            covered.update((i, i + 1, i + 2))
    return len(covered)


def _fraction(v: float) -> bool:
    return 0 <= v < 1


# "auto" picks adapt on a CPU and full on CUDA; each mode is described in stt/finetune/modes.py, whose
# NAMES these are (tests/test_engine.py holds them together).
TRAINING_MODES = ("auto", "adapt", "decoder", "full", "lora")


@dataclass
class ServerConfig:
    host: str = setting("127.0.0.1", "Address to bind. Any other than loopback needs access_token.")
    port: int = setting(5000, "Port.", (lambda v: 0 <= v <= 65535, "a port number 0-65535"))
    access_token: str = setting(
        "", "Needed to bind to any address other than loopback (reachable from the LAN): every request must then "
        "carry it (header \"Authorization: Bearer <token>\" or the login form's cookie). Better set through "
        "S2S_SERVER_ACCESS_TOKEN.",
        (lambda v: v == "" or _strong(v), "empty, or a token of at least 12 characters, no spaces, at least 8 of "
         "them different, not a pattern repeated nor mostly runs such as 1234 or abcd (make one with: "
         "python -c \"import secrets; print(secrets.token_urlsafe(24))\")"),
        secret=True)


@dataclass
class DatabaseConfig:
    path: Path = setting(Path("data/database.db"), "The SQLite file the assistant writes; on Windows, for "
                         "example, 'C:\\Users\\Aspen\\Dev\\database\\database.db'.")
    busy_timeout_ms: int = setting(5000, "How long a request waits for the assistant's write lock before giving up.",
                                   (lambda v: v >= 0, "a non-negative number of milliseconds"))
    keep_free_mb: int = setting(-1, "Free space (MB) the app leaves on every disk it writes (the model's caches, "
                                "runs and versions, imports into this database, exports) so the assistant can keep "
                                "recording; a write that would eat into it stops and says what to delete. "
                                "-1: a tenth of the disk, at most 1 GB. 0: none.",
                                (lambda v: v >= -1, "a size in MB, 0 or more (-1: a tenth of the disk, at most "
                                                    "1 GB)"))


@dataclass
class ModelConfig:
    path: Path = setting(Path(".models/stt/distil-small.en"),
                         "The Whisper model the assistant loads (Hugging Face or CTranslate2 folder).")


@dataclass
class AudioConfig:
    pcm_sample_rate: int = setting(16000, "Sample rate of audio stored without a container header (raw PCM).",
                                   (lambda v: 1000 <= v <= 384000, "a sample rate in Hz (1000-384000)"))
    pcm_sample_format: str = setting("s16le", "Sample format of raw PCM: s16le, s32le, f32le or u8.",
                                     (lambda v: v in {"s16le", "s32le", "f32le", "u8"},
                                      "one of s16le, s32le, f32le, u8"))
    pcm_channels: int = setting(1, "Channels of raw PCM.", (lambda v: 1 <= v <= 8, "a channel count 1-8"))
    # Bounds memory against compressed audio that inflates to gigabytes. A voice assistant's clips are seconds.
    max_duration_s: float = setting(300.0, "Longest recording decoded (playback, waveform, transcription, "
                                    "training), in seconds.",
                                    (lambda v: 1 <= v <= 24 * 3600, "a number of seconds, 1 to 86400"))


@dataclass
class TrainingConfig:
    mode: str = setting("auto", "\"auto\" picks \"adapt\" on a CPU (the top encoder layers and the decoder, on "
                        "cached states) and \"full\" on CUDA; also \"decoder\" (the whole encoder frozen) and "
                        "\"lora\" (stt/finetune/modes.py).",
                        (lambda v: v in TRAINING_MODES, "one of " + ", ".join(TRAINING_MODES)))
    adapt_layers: int = setting(0, "Encoder layers \"adapt\" trains (the top ones); 0 picks half of a small "
                                "encoder, a quarter of a larger one (tiny.en 2 of 4, base.en 3 of 6, "
                                "distil-small.en 3 of 12).",
                                (lambda v: 0 <= v <= 64,
                                 "a layer count 0-64 (0: half of a small encoder, a quarter of a larger one)"))
    # Measured on tiny.en (docs/performance.md, "Choosing the defaults"): the setting that cut
    # held-out WER most while WER on ordinary speech fell, over three seeds; at 7e-5 ordinary
    # speech already got worse than at 5e-5, at twice the rate it no longer fell, at four times
    # it nearly doubled. At 5e-5, 8 epochs beat 5 on held-out and ordinary speech alike.
    learning_rate: float = setting(5e-5, "Chosen by measurement (docs/performance.md, \"Training\"): higher "
                                   "rates teach the new words faster but make the model forget ordinary speech.",
                                   (lambda v: 0 < v < 1, "a learning rate between 0 and 1"))
    epochs: int = setting(8, "The most epochs a run trains.",
                          (lambda v: 1 <= v <= 1000, "a whole number of epochs 1-1000"))
    patience: int = setting(2, "The stop before memorisation: after each epoch the loss of what the run measures "
                            "but never trains on (held-out items, regression checks, built-in check) is computed; "
                            "the run keeps the epoch where it was lowest and ends after this many epochs without a "
                            "new low. 0: train every epoch and keep the last.",
                            (lambda v: 0 <= v <= 1000, "a whole number of epochs 0-1000 (0 turns the stop off)"))
    blend: bool = setting(True, "Then blend the kept epoch with the model the run started from: of the trained "
                          "change, keep the share (half to all) whose loss on the same sets is lowest. It held "
                          "earlier rounds and ordinary speech in place, for a little of the newest round's gain "
                          "(docs/performance.md, \"Three rounds\"). Needs patience above 0.")
    batch_size: int = setting(8, "Clips per training step.", (lambda v: 1 <= v <= 1024, "a batch size 1-1024"))
    warmup_ratio: float = setting(0.1, "Share of the steps over which the learning rate rises to its value.",
                                  (_fraction, "a fraction 0-1"))
    weight_decay: float = setting(0.01, "AdamW's weight decay.", (_fraction, "a fraction 0-1"))
    seed: int = setting(42, "Seeds the order of the training clips and any random start (dropout, LoRA), so a "
                        "run can be repeated (on a CPU training runs on deterministic kernels: the same clips "
                        "train the same model). The held-out split does not use it: it is a fixed hash of each "
                        "item's id, so an item held out once stays held out.")
    heldout_fraction: float = setting(0.1, "Share of reviewed items kept out of training to measure WER.",
                                      (_fraction, "a fraction 0-1"))
    heldout_min: int = setting(3, "At least this many reviewed items are held out.",
                               (lambda v: v >= 0, "a non-negative count"))
    wer_tolerance: float = setting(0.0, "A new model is refused if held-out, regression or built-in WER rose by "
                                   "more than this (absolute) and the rise is unlikely to be chance "
                                   "(deploy_confidence).",
                                   (lambda v: 0 <= v <= 1, "an absolute WER tolerance 0-1"))
    deploy_confidence: float = setting(0.95, "A set that got worse blocks a deploy only if it got worse in this "
                                       "share of bootstrap resamples of its clips: one word among a handful is "
                                       "noise, not a verdict (stt/finetune/deploy_rule.py).",
                                       (lambda v: 0.5 <= v <= 1, "a share 0.5-1"))
    rehearsal_max: int = setting(200, "Earlier runs' items rehearsed in each run, so a second round does not erase "
                                 "the first: up to two per new item, at most this many (0: off).",
                                 (lambda v: v >= 0, "a non-negative count"))
    builtin_speech: bool = setting(True, "Built-in ordinary English speech (stt/finetune/ordinary): rehearsed in "
                                   "every run, and a deploy check while you have fewer than 20 regression checks "
                                   "of your own.")
    rescore_after_deploy: bool = setting(True, "After a deploy (or a rollback), transcribe the unreviewed items "
                                         "again with the new model in the background, so ordering by "
                                         "disagreement and the suggestions follow it.")
    cache_limit_mb: int = setting(2048, "Most the encoder-state cache beside the model may hold (MB) after a run; "
                                  "the clips least recently used go first, and a later run computes them again "
                                  "if it needs them. The warm-up fills it no further. 0: no limit.",
                                  (lambda v: v >= 0, "a size in MB, 0 or more (0: no limit)"))
    versions_kept: int = setting(3, "How many earlier model versions are kept for rollback.",
                                 (lambda v: v >= 1, "a count of at least 1"))
    lora_r: int = setting(32, "Rank of the LoRA adapters (mode \"lora\" only).",
                          (lambda v: 1 <= v <= 1024, "a LoRA rank 1-1024"))
    max_grad_norm: float = setting(1.0, "Gradients are clipped to this global norm: a few odd clips cannot throw "
                                   "the model off.", (lambda v: v > 0, "a positive gradient norm"))
    num_threads: int = setting(0, "Threads for training; 0 means every core.",
                               (lambda v: 0 <= v <= 1024, "a thread count 0-1024 (0: every core)"))
    regression_dir: str = setting("", "A folder of ordinary speech (<name>.wav + <name>.txt) whose WER must not "
                                  "rise for a model to deploy.")


# How the assistant decodes (stt/assistant/profile.py): "auto" follows the model folder's format.
RUNTIMES = ("auto", "faster-whisper", "transformers")
SWITCHES = ("default", "on", "off")


def _switch(help_text: str) -> Any:
    return setting("default", help_text, (lambda v: v in SWITCHES, "default, on or off"))


@dataclass
class AssistantConfig:
    """How the assistant transcribes with the deployed model: runs measure and judge every model this way."""
    runtime: str = setting("auto", "What the assistant decodes with: \"auto\" is faster-whisper for a CTranslate2 "
                           "folder and transformers for a Hugging Face one; or \"faster-whisper\", "
                           "\"transformers\". Each setting below left at its default is that runtime's own default.",
                           (lambda v: v in RUNTIMES, "one of " + ", ".join(RUNTIMES)))
    compute_type: str = setting("int8", "faster-whisper's compute_type (WhisperModel(..., compute_type=...)): int8, "
                                "int8_float32, float32, float16, default ...",
                                (lambda v: bool(v.strip()), "a CTranslate2 compute type such as int8"))
    beam_size: int = setting(0, "Beams (transcribe(beam_size=...) / generate(num_beams=...)); 0: the runtime's "
                             "default (faster-whisper 5, transformers 1).", (lambda v: 0 <= v <= 64, "0-64"))
    timestamps: str = _switch("Whether the assistant decodes with timestamps (faster-whisper: not "
                              "without_timestamps; transformers: return_timestamps). default: on for faster-whisper, "
                              "off for transformers (which turns them on itself past 30 s).")
    condition_on_previous_text: str = _switch("Long audio: each 30 s window prompted with the text before it. "
                                              "default: on for faster-whisper, off for transformers.")
    vad_filter: bool = setting(False, "faster-whisper's vad_filter: Silero VAD cuts the silence out before decoding.")
    no_speech_threshold: float = setting(
        -1.0, "The no-speech gate: a window whose no-speech probability is above this (and whose text the model is "
        "unsure of, avg log-prob below -1) is skipped as silence. -1: the runtime's default (faster-whisper 0.6, "
        "transformers none); above 1: never skipped.",
        (lambda v: v == -1.0 or 0 <= v, "-1 (the runtime's default) or a probability"))
    language: str = setting("en", "The language spoken to the assistant, as a Whisper code: a multilingual model is "
                            "trained and measured in it, with the matching text normalizer. English-only models: en.",
                            (lambda v: v.isascii() and v.isalpha() and v.islower() and 2 <= len(v) <= 3,
                             "a Whisper language code such as en, de or fr"))
    initial_prompt: str = setting("", "The initial_prompt the assistant passes, if any.")
    on_deploy: tuple = setting((), "A command run after every deploy and rollback to tell the assistant (say, to "
                               "reload its model): the program and its arguments as a list, run without a shell, "
                               "with S2S_MODEL_PATH, S2S_MODEL_VERSION and S2S_DEPLOYED_FILE set. Empty: none (the "
                               "file <model>.deployed.json changes either way).",
                               (lambda v: all(isinstance(a, str) and a for a in v), "a list of non-empty strings"))
    on_deploy_timeout_s: int = setting(30, "How long the on_deploy command may run before it is stopped and "
                                       "reported as failed.", (lambda v: v >= 1, "at least 1"))


@dataclass
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    assistant: AssistantConfig = field(default_factory=AssistantConfig)
    # Where relative paths were resolved from; kept so derived folders (model
    # versions, job logs) land beside the configured ones.
    root: Path = PROJECT_ROOT


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
        if kind is tuple:  # a command: a TOML array, or a string split as a shell would (an environment variable)
            if isinstance(value, str):
                return tuple(shlex.split(value))
            if isinstance(value, (list, tuple)) and all(isinstance(a, str) for a in value):
                return tuple(value)
            raise TypeError
        if kind is str:
            if isinstance(value, bool) and default in SWITCHES:  # `timestamps = true` reads as on
                return "on" if value else "off"
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
            raise ConfigError(f"config section [{section}] in {source} is unknown "
                              f"(known: {', '.join(sorted(sections))})")
        if not isinstance(values, Mapping):
            raise ConfigError(f"config key {section} in {source} must be a table")
        target = getattr(cfg, section)
        known = {f.name for f in dataclasses.fields(target)}
        for key, value in values.items():
            if key not in known:
                raise ConfigError(f"config key {section}.{key} in {source} is unknown "
                                  f"(known: {', '.join(sorted(known))})")
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
            hint = (" A Windows path in double quotes reads its backslashes as escapes: write it in single quotes "
                    "('C:\\Users\\me\\database.db') or with forward slashes.") \
                if "escape" in str(exc) or "hex value" in str(exc) else ""
            raise ConfigError(f"config file {file} is not valid TOML: {exc}.{hint}") from None
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
    for section in dataclasses.fields(cfg):
        if section.name == "root":
            continue
        for key in dataclasses.fields(getattr(cfg, section.name)):
            rule, value = key.metadata.get("valid"), getattr(getattr(cfg, section.name), key.name)
            if rule is not None and not rule[0](value):
                # A secret is never echoed: the message lands in terminals, logs and screenshots.
                got = f"{len(value)} characters" if key.metadata.get("secret") else repr(value)
                raise ConfigError(f"config key {section.name}.{key.name}: expected {rule[1]}, got {got}")
