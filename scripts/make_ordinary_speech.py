"""Render the built-in ordinary speech set (stt/finetune/ordinary) from stt/finetune/ordinary/sentences.txt
with espeak-ng.

Run once by a developer when the sentences change; the app only reads the result, so a
user needs no espeak-ng for training. Every fourth sentence goes to the gate split (never
trained on, spoken by voices of its own), the rest to the rehearsal split.

    python scripts/make_ordinary_speech.py
"""
from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stt.finetune.ordinary import FOLDER, INDEX, read_sentences  # noqa: E402
from utils.audio import load_for_whisper  # noqa: E402
from utils.config import AudioConfig  # noqa: E402
from utils.demo import synthesize  # noqa: E402

# None of these is a voice of the benchmark's "user" (tests/training_clips.py).
REHEARSAL_VOICES = [("en-gb-x-rp+m2", 155), ("en+f4", 170), ("en-us+m7", 150), ("en-gb-x-gbclan+f1", 165)]
GATE_VOICES = [("en-gb-x-gbcwmd+m5", 160), ("en-us+f5", 170)]


def main() -> None:
    audio_dir = FOLDER / "speech"
    shutil.rmtree(audio_dir, ignore_errors=True)
    audio_dir.mkdir(parents=True)
    rows = []
    for i, text in enumerate(read_sentences()):
        split = "gate" if i % 4 == 3 else "rehearsal"
        voices = GATE_VOICES if split == "gate" else REHEARSAL_VOICES
        voice, speed = voices[i % len(voices)]
        samples = load_for_whisper(synthesize(text, voice, speed), AudioConfig())
        name = f"{i:03d}.ogg"
        # Vorbis at its default quality: a tenth of the WAV's size, and Whisper hears no difference.
        sf.write(audio_dir / name, samples, 16000, format="OGG", subtype="VORBIS")
        rows.append({"file": f"speech/{name}", "split": split, "voice": voice, "text": text})
    with INDEX.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["file", "split", "voice", "text"], delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} clips in {audio_dir}")


if __name__ == "__main__":
    main()
