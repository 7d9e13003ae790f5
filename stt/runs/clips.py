"""The clips a run reads: reviewed items from the shared database, and the regression folder.

An item that cannot be used (no words, a transcript that is not text, audio
that does not decode or lasts over the 30 s Whisper hears) is left out with
its id in `skipped`; what the run found out about its audio is remembered, so
it stops counting as pending.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

from stt.finetune.data import Sample
from utils import audio, audio_meta_rows, database, runs, training_sets
from utils.columns import INVALID_TEXT
from utils.config import Config


def load_samples(conn: sqlite3.Connection, cfg: Config, ids: list[int], skipped: list[int] | None = None,
                 digests: dict[int, str] | None = None) -> list:
    """Decoded 16 kHz samples of items; those without audio or transcript go to `skipped`, and each used
    item's audio digest to `digests` (so a run marks trained only items still holding that audio)."""
    samples = []
    for item_id in ids:
        row = database.reviewed_text_and_audio(conn, item_id)
        no_speech = row is not None and row[2]  # marked "no speech": its empty transcript is the target
        # Not str: the row changed to a BLOB or number since the plan; U+FFFD: not valid UTF-8 (utils/columns.py).
        if row is None or not (no_speech or isinstance(row[0], str) and training_sets.has_text(row[0])
                               and INVALID_TEXT not in row[0]):
            if skipped is not None:
                skipped.append(item_id)
            continue
        text = "" if no_speech else row[0]
        blob = row[1]
        try:
            clip = audio.load_for_whisper(blob, cfg.audio)
            seconds = len(clip) / audio.WHISPER_RATE
            if seconds <= audio.WHISPER_WINDOW_S:
                samples.append(Sample(item_id, text, clip))
                if digests is not None:
                    digests[item_id] = runs.audio_digest(blob)
                continue
            # Whisper sees 30 s: the rest of the transcript would be taught with no audio under it.
            facts = audio.info(blob, cfg.audio)
            _remember(conn, item_id, blob, cfg, facts.mime, seconds, facts.sample_rate, None)
        except audio.AudioError as exc:
            _remember(conn, item_id, blob, cfg, None, None, None, str(exc))
        if skipped is not None:
            skipped.append(item_id)
    return samples


def _remember(conn: sqlite3.Connection, item_id: int, blob: bytes, cfg: Config, mime: str | None,
              seconds: float | None, rate: int | None, error: str | None) -> None:
    """Store what a run found out about a clip, like the editor's own check, so it stops counting as pending."""
    pcm = audio.pcm_settings(cfg.audio) if audio.sniff(blob or b"") == "pcm" else None
    try:
        audio_meta_rows.store(conn, item_id, len(blob or b""), mime, seconds, rate, error, pcm)
    except sqlite3.OperationalError:
        pass  # the assistant held the lock: the next run finds out again


def load_regression(cfg: Config) -> list:
    """Clips of ordinary speech whose WER must not rise: `<name>.wav` + `<name>.txt` pairs in regression_dir
    (besides the items the reviewer flagged, which load_samples reads)."""
    if not cfg.training.regression_dir:
        return []
    folder = Path(cfg.training.regression_dir)
    folder = folder if folder.is_absolute() else cfg.root / folder
    if not folder.is_dir():  # a typo must not silently switch the check off
        raise RuntimeError(f"the regression folder {folder} (training.regression_dir) does not exist")
    samples = []
    for i, wav in enumerate(sorted(folder.glob("*.wav"))):
        text = wav.with_suffix(".txt")
        if text.is_file():
            samples.append(Sample(-(i + 1), text.read_text(encoding="utf-8").strip(),
                                  audio.load_for_whisper(wav.read_bytes(), cfg.audio)))
    return samples
