"""What the deployed model wrote for each measured clip, kept beside it between runs.

Measuring a run's model before training decodes the deployed folder the assistant's way; most of
what it measures is the same every time (the built-in speech, the long recording, the built-in
sounds without speech, held-out items from earlier runs), and the deployed folder only changes
when a run or a rollback swaps it. So each clip's result is kept in one file per deployed model
and profile, `<model>.heard/<fingerprint>-<profile>.json`; the warm-up fills it while the user
reviews (stt/runs/warm.py). A changed model or profile names another file, and the others go.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from pathlib import Path

import numpy as np

from stt.assistant.decoder import Heard
from stt.assistant.profile import Profile
from stt.models import store
from stt.review.transcriber import model_fingerprint


def clip_key(audio: np.ndarray) -> str:
    """A clip's identity: all of its samples (a long recording is longer than one window)."""
    samples = np.ascontiguousarray(np.asarray(audio, dtype=np.float32))
    return hashlib.blake2b(samples.tobytes(), digest_size=16).hexdigest()


class HeardCache:
    """The deployed model's results for one profile; unreadable files are treated as empty."""

    def __init__(self, model_path: Path, profile: Profile) -> None:
        self.folder = store.heard_dir(Path(model_path))
        self.file = self.folder / f"{model_fingerprint(Path(model_path))}-{profile.key()}.json"

    def load(self) -> dict[str, Heard]:
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
            return {key: Heard.from_json(value) for key, value in data.items()}
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return {}

    def save(self, entries: dict[str, Heard]) -> None:
        """Add `entries`, written whole and renamed (a stopped warm-up leaves nothing half-written); the
        files of other models and profiles are removed."""
        merged = {**self.load(), **entries}
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.folder / f"{self.file.stem}.{uuid.uuid4().hex[:8]}.partial"
        partial.write_text(json.dumps({k: v.as_json() for k, v in merged.items()}), encoding="utf-8")
        os.replace(partial, self.file)
        for stale in self.folder.iterdir():
            # Another process's partial file may be on its way to its rename; one left by a crash is old.
            if stale != self.file and (stale.suffix != ".partial" or time.time() - stale.stat().st_mtime > 600):
                stale.unlink(missing_ok=True)
