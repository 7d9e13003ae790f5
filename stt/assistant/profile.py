"""How the assistant decodes: the [assistant] settings resolved against the model folder's format.

Most assistants built on faster-whisper call `WhisperModel(path, compute_type="int8")` and then
`transcribe(audio, language="en")` with every other argument at its default: beam 5, timestamps
on, each 30 s window prompted with the text before it, temperature fallback, and the no-speech
gate. A model measured another way (greedy, after <|notimestamps|>, in float32) can look better
than it is: after one Train click that never saw a clip without speech, faster-whisper's
defaults wrote words on almost every noise, and a greedy decode could not see it. So every
setting left at "default" takes the runtime's own default, and a run judges its model this way.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from stt.models.model_format import CTRANSLATE2
from utils.config import AssistantConfig

FASTER_WHISPER, TRANSFORMERS = "faster-whisper", "transformers"
# faster-whisper's transcribe() and transformers' generate() defaults, where the two differ.
_DEFAULTS = {
    FASTER_WHISPER: {"beam_size": 5, "timestamps": True, "condition_on_previous_text": True,
                     "no_speech_threshold": 0.6},
    TRANSFORMERS: {"beam_size": 1, "timestamps": False, "condition_on_previous_text": False,
                   "no_speech_threshold": None},
}


@dataclass(frozen=True)
class Profile:
    """Every choice that changes what the assistant writes, resolved to a value."""
    runtime: str
    compute_type: str                  # faster-whisper only
    beam_size: int
    timestamps: bool
    condition_on_previous_text: bool
    vad_filter: bool
    no_speech_threshold: float | None  # None: no gate
    language: str
    initial_prompt: str

    def key(self) -> str:
        """A short digest of the profile: what was heard one way is never reused for another."""
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]

    def describe(self) -> str:
        """One line for a run's result and `main.py evaluate`: what the numbers were measured with."""
        parts = [self.runtime + (f" {self.compute_type}" if self.runtime == FASTER_WHISPER else ""),
                 f"beam {self.beam_size}", "timestamps" if self.timestamps else "no timestamps"]
        if self.condition_on_previous_text:
            parts.append("previous text as prompt")
        if self.no_speech_threshold is not None:
            parts.append(f"no-speech gate {self.no_speech_threshold:g}")
        if self.vad_filter:
            parts.append("VAD")
        if self.initial_prompt:
            parts.append("initial prompt")
        return ", ".join(parts + [f"language {self.language}"])


def _switch(value: str, default: bool) -> bool:
    return default if value == "default" else value == "on"


def resolve(cfg: AssistantConfig, model_format: str) -> Profile:
    """The profile for a model folder of `model_format`: "auto" decodes a CTranslate2 folder with
    faster-whisper and a Hugging Face one with transformers, as the assistant can only load it that way."""
    runtime = cfg.runtime if cfg.runtime != "auto" else (FASTER_WHISPER if model_format == CTRANSLATE2
                                                         else TRANSFORMERS)
    defaults = _DEFAULTS[runtime]
    threshold = defaults["no_speech_threshold"] if cfg.no_speech_threshold == -1.0 else cfg.no_speech_threshold
    return Profile(runtime=runtime, compute_type=cfg.compute_type, beam_size=cfg.beam_size or defaults["beam_size"],
                   timestamps=_switch(cfg.timestamps, defaults["timestamps"]),
                   condition_on_previous_text=_switch(cfg.condition_on_previous_text,
                                                      defaults["condition_on_previous_text"]),
                   vad_filter=cfg.vad_filter, no_speech_threshold=None if threshold is None or threshold > 1
                   else threshold, language=cfg.language, initial_prompt=cfg.initial_prompt)


def fast_path(language: str = "en") -> Profile:
    """How runs measured before they heard the assistant's way: transformers, greedy, after
    <|notimestamps|>, no gate. Kept for the benchmark, which shows both side by side."""
    return Profile(TRANSFORMERS, "float32", 1, False, False, False, None, language, "")
