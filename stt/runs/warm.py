"""Before the first Train click: the built-in speech's frozen encoder part, computed in the background.

A first click encodes every clip it trains on or measures, and most of them are the built-in
ordinary speech (stt/finetune/ordinary: 93 clips beside the user's 30), which every later click
reads from the state cache. On distil-small.en's shape that encoding was 38% of a first click of
30 clips (docs/performance.md). `main.py serve` starts this process once the app is up, while the
user reviews; it runs at low priority on one thread so the pages stay quick, and a Train click
ends it (stt/runs/jobs.start): the run then computes whatever is still missing itself. Nothing it
writes can be wrong, only missing: the cache is keyed by the frozen weights and each clip's audio.

In mode "adapt" it also runs the trained top of the encoder over those states once, for the tails
each run would otherwise compute first (stt/finetune/frozen_tail.py), keyed by the top's weights.
And it hears the built-in sets every run measures (the gate, the long recording, the sounds without
speech) through the deployed model the assistant's way (stt/runs/measuring.hear_deployed), so a
run's "measuring before" decodes only the user's clips. A run changes the model, so the end of
every run (and a rollback) starts the warm-up again for the model now deployed.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from stt.models import store
from stt.models.conversion import working_copy_bytes
from stt.models.model_format import ModelFormatError, detect_format
from stt.review.transcriber import model_fingerprint
from utils import background, disk
from utils.config import Config, load_config

# The marker a finished warm-up leaves in the cache, naming the model folder it warmed for.
MARKER = "warm.json"
# The sentence a warm-up refused for disk space leaves there, until one finishes: it has no console.
REFUSED = "warm-refused.txt"
_process: subprocess.Popen | None = None
# Whether this process serves the app (start() was called): only then does the end of a run warm again.
_serving = False


def wanted(cfg: Config) -> bool:
    """Whether the deployed model's built-in states may still be missing: a model is there, runs use
    the built-in speech, and no warm-up finished for this very model folder (a few stat calls)."""
    if not cfg.training.builtin_speech:
        return False
    try:
        detect_format(cfg.model.path)
    except ModelFormatError:
        return False
    done = _marker(cfg)
    for marker in store.state_cache_dir(cfg.model.path).glob(f"*/{MARKER}"):
        try:
            if json.loads(marker.read_text(encoding="utf-8")) == done:
                return False
        except (OSError, ValueError):
            continue
    return True


def _marker(cfg: Config) -> dict[str, str]:
    """What a finished warm-up was for: this very model folder, heard with this profile, within this cache limit."""
    from stt.runs.measuring import profile_for

    return {"model": model_fingerprint(cfg.model.path), "profile": profile_for(cfg).key(),
            "cache_limit_mb": str(cfg.training.cache_limit_mb)}


def start(cfg: Config) -> bool:
    """Start the warm-up process when it is wanted; True when one was started."""
    global _process, _serving
    _serving = True
    if (_process is not None and _process.poll() is None) or not wanted(cfg):
        return False
    data = {"model": {"path": str(cfg.model.path)},
            "training": {"mode": cfg.training.mode, "adapt_layers": cfg.training.adapt_layers,
                         "batch_size": cfg.training.batch_size,
                         "cache_limit_mb": cfg.training.cache_limit_mb},
            "assistant": dataclasses.asdict(cfg.assistant), "database": {"keep_free_mb": cfg.database.keep_free_mb}}
    try:  # below normal priority, and ending with this process however it ends (stt/runs/background.py)
        _process = background.start_helper([sys.executable, "-m", "stt.runs.warm", "--config-json", json.dumps(data)],
                                           cwd=str(Path(__file__).resolve().parents[2]),
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        return False  # only a head start is lost: the first run encodes the clips itself
    return True


def stop() -> None:
    """End a warm-up still going (a run is starting and needs the cores); what it cached stays."""
    global _process
    if _process is not None:
        background.stop_helper(_process)
    _process = None


def after_deploy(cfg: Config) -> None:
    """A run ended or a rollback swapped the model: warm again for the model now deployed, where `main.py
    serve` warmed before. The bottom's states mostly stay valid (a run trains only the top); the tails are new."""
    if _serving:
        start(cfg)


def warm(cfg: Config) -> int:
    """Compute the frozen encoder part of every built-in clip a run reads not cached yet, and the trained top's
    tails of them (stt/finetune/frozen_tail.py) for the deployed weights, then hear the built-in sets the
    assistant's way; returns how many clips' states were computed."""
    from stt.finetune import modes, ordinary
    from stt.finetune.encoder_states import EncoderSplit
    from stt.finetune.engine import load_model, pick_device
    from stt.finetune.labels import learned_forms
    from stt.finetune.run_inputs import cache_states
    from stt.finetune.state_files import StateCache
    from stt.models.conversion import as_huggingface
    from stt.runs.measuring import builtin_checks, hear_deployed

    device = pick_device()
    mode = modes.resolve(cfg.training.mode, device)
    done = _marker(cfg)
    # full and lora encode every step, so there is nothing to keep: the marker alone says so, in a folder of
    # its own (a cached mode's first run clears it away as a stale cache, and the next start looks again).
    done_in, computed = store.state_cache_dir(cfg.model.path) / "uncached", 0
    if mode.cached:
        # Beside the model, named as a run's work folder: removed on the way out, and by the next start
        # (stt.runs.jobs.recover) should the process have been killed outright.
        # Its working copy of the model leaves the assistant's margin free, as every writer of the app does.
        disk.ensure_room(cfg.model.path.parent, working_copy_bytes(cfg.model.path), "the warm-up's working copy "
                         "of the model", "Free space on that disk.", cfg.database.keep_free_mb)
        with tempfile.TemporaryDirectory(prefix=f"{cfg.model.path.name}.work-warm-", dir=cfg.model.path.parent) \
                as scratch:
            processor, model = load_model(as_huggingface(cfg.model.path, Path(scratch) / "hf"), device)
            layers = len(model.get_encoder().layers)
            split = EncoderSplit(model, mode.trained_layers(layers, cfg.training.adapt_layers))
            cache = StateCache(store.state_cache_dir(cfg.model.path), split.fingerprint(processor.feature_extractor),
                               keep_free_mb=cfg.database.keep_free_mb)
            # What a run trains on (the rehearsal) and watches (a spread of the gate) of the built-in material,
            # with its tails; and what it only measures, which a model decoded with transformers starts from.
            plain, windows = learned_forms(ordinary.load("rehearsal"))
            learned = [*plain, *(window for window, _ in windows), *ordinary.watched(ordinary.load("gate"))]
            clips = _within_limit([*learned, *ordinary.load("gate"), *builtin_checks()["quiet"]], cache, split,
                                  cfg.training.cache_limit_mb)
            keys, computed = cache_states(split, processor.feature_extractor, clips, cache, device,
                                          cfg.training.batch_size, lambda done, total: None)
            if split.trained_layers:
                _tails(split, cache, keys[:len(learned)], device, cfg.training.batch_size,
                       cfg.training.cache_limit_mb)
        done_in = cache.folder
    hear_deployed(cfg, {"ordinary": ordinary.load("gate"), **builtin_checks()}, lambda *_: None, workers=1)
    done_in.mkdir(parents=True, exist_ok=True)
    (done_in / MARKER).write_text(json.dumps(done), encoding="utf-8")
    (store.state_cache_dir(cfg.model.path) / REFUSED).unlink(missing_ok=True)
    return computed


def refused(model_path: Path) -> str | None:
    """Why the last warm-up stopped short of disk space, while none has finished since (GET /api/health)."""
    try:
        return (store.state_cache_dir(model_path) / REFUSED).read_text(encoding="utf-8")
    except OSError:
        return None


# An .npy file's header, beside the state itself (state_files.state_bytes).
NPY_HEADER = 128


def _room(cache: Any, limit_mb: int) -> float:
    """What the state cache may still take under `[training].cache_limit_mb` (0: no limit)."""
    return limit_mb * disk.MB - disk.folder_size(cache.root) if limit_mb > 0 else float("inf")


def _within_limit(clips: list, cache: Any, split: Any, limit_mb: int) -> list:
    """The leading clips whose states, where not cached yet, fit under the cache's limit. A run cuts the cache
    to its limit when it ends; a warm-up filling it past that would only be cut again after the next run, and
    every run's end would encode the same clips again. A run computes what the warm-up left out."""
    from stt.finetune.state_files import audio_key, state_bytes

    room, each, kept = _room(cache, limit_mb), state_bytes(split) + NPY_HEADER, []
    keys = [audio_key(c.audio) for c in clips]
    missing = set(cache.missing(keys))
    for clip, key in zip(clips, keys):
        if key in missing:
            if room < each:
                break
            room -= each
        kept.append(clip)
    return kept


def _tails(split: Any, cache: Any, keys: list[str], device: str, batch_size: int, limit_mb: int) -> None:
    """The top's tails of the built-in clips, which a run would otherwise compute first
    (stt/finetune/run_inputs.prepare); only the current top's are kept, and only as many as the cache's limit allows."""
    from stt.finetune.run_inputs import make_tails, warm_tails_dir
    from stt.finetune.state_files import FrozenTail, keep_only, state_bytes

    folder = warm_tails_dir(cache, split)
    keep_only(folder.parent, folder.name)
    folder.mkdir(parents=True, exist_ok=True)
    tail = FrozenTail(split, folder / "tail", keep_free_mb=cache.keep_free_mb)
    fit = _room(cache, limit_mb) // (split.trained_layers * (state_bytes(split) + NPY_HEADER))
    todo = tail.missing(keys)[:int(max(0, min(fit, len(keys))))]
    if FrozenTail.fits(split, len(todo), folder):
        make_tails(cache, tail, todo, device, batch_size, lambda done, total: None)


def main(argv: list[str] | None = None) -> int:
    """`python -m stt.runs.warm --config-json JSON`, started by `main.py serve` through start()."""
    ap = argparse.ArgumentParser(description="Cache the built-in speech's frozen encoder states.")
    ap.add_argument("--config-json", required=True)
    args = ap.parse_args(argv)
    background.end_with_app()  # started below normal priority: the assistant, the pages and "Ask model" come first
    import torch

    torch.set_num_threads(1)
    return warm_or_say_why(load_config(environ={}, overrides=json.loads(args.config_json)))


def warm_or_say_why(cfg: Config) -> int:
    """The warm-up's process: 0 when it finished; 1 when it stopped to keep the assistant's margin free, which
    it says where the dashboard looks (`refused`), as nobody reads its output."""
    try:
        warm(cfg)
    except disk.DiskShort as exc:
        note = store.state_cache_dir(cfg.model.path) / REFUSED
        try:
            note.parent.mkdir(parents=True, exist_ok=True)
            note.write_text(f"The warm-up, which prepares the first Train click, stopped: {exc}", encoding="utf-8")
        except OSError:
            pass  # not even a line fits: the disk line says the disk is short
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
