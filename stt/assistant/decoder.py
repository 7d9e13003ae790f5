"""A model folder loaded and decoded the way the assistant does it (stt/assistant/profile.py).

faster-whisper for a CTranslate2 folder: `WhisperModel(...).transcribe(...)` itself, so its beam
search, timestamp rules, seeking through long audio, temperature fallback and no-speech gate are
the very ones the assistant runs. transformers for a Hugging Face folder: `generate()`, which
does long-form decoding itself past 30 s.

Nothing is capped: a decode that loops runs to Whisper's 448 tokens, and faster-whisper's own
answer to it (the compression-ratio fallback, then the no-speech gate) is what the assistant
gets, so it is what is measured (a cap at ten tokens a second turned eight skipped noises into
eight lines of "Is it the Zorblax or the Zorblax"). A window whose text repeats itself (Whisper's
compression ratio above 2.4) or runs past ten tokens a second (`stt.models.decoding.max_new_tokens`;
nobody says more than five) counts as looped. Clips are decoded two at a time where faster-whisper
can (one thread each, measured faster on 2 cores than one decode on two threads).
"""
from __future__ import annotations

import os
import threading
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stt.assistant.profile import FASTER_WHISPER, Profile
from stt.models.decoding import SAMPLE_RATE, WINDOW, max_new_tokens
from stt.models.model_format import is_multilingual

# Whisper's own test for a decode that repeats itself (faster-whisper's and OpenAI's fallback threshold).
COMPRESSION_RATIO_LIMIT = 2.4
# The seed of CTranslate2's sampling, which faster-whisper's temperature fallback uses.
SEED = 0
# A model file smaller than this is loaded twice on a machine of two cores or more, each copy decoding on
# one thread: measured faster than one copy on two threads for tiny.en (9.1 s against 13.2 s for the gate).
_PARALLEL_BELOW_BYTES = 1 << 30


class DecodeError(RuntimeError):
    """The folder cannot be loaded or decoded the assistant's way; the message says why."""


@dataclass(frozen=True)
class Heard:
    """What the assistant would write for one clip."""
    text: str
    segments: tuple[tuple[float, float], ...] = ()   # (start, end) seconds of each timed segment
    looped: bool = False                              # ran to the token cap, or repeats itself

    def as_json(self) -> dict[str, Any]:
        return {"text": self.text, "segments": [list(s) for s in self.segments], "looped": self.looped}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Heard:
        return cls(str(data["text"]), tuple((float(a), float(b)) for a, b in data.get("segments", [])),
                   bool(data.get("looped", False)))


def compression_ratio(text: str) -> float:
    """How much zlib shrinks the text: above 2.4 it repeats itself (Whisper's own measure)."""
    raw = text.encode("utf-8")
    return len(raw) / len(zlib.compress(raw)) if raw else 0.0


class Decoder:
    """One loaded folder; `hear_all` decodes clips and reports each as done."""

    def hear(self, audio: np.ndarray) -> Heard:
        raise NotImplementedError

    def hear_all(self, clips: Sequence[np.ndarray], done: Callable[[int], None] = lambda count: None) -> list[Heard]:
        """Every clip's Heard, in order; `done(count)` after each, so a caller can report or cancel."""
        out = []
        for audio in clips:
            out.append(self.hear(audio))
            done(len(out))
        return out


class FasterWhisperDecoder(Decoder):
    """faster-whisper's transcribe(). Its temperature fallback samples, from a random generator each
    CTranslate2 thread seeds once; seeded here, and with each loaded copy of the model decoding its
    own fixed share of the clips on its own thread, the same clips give the same results every time."""

    def __init__(self, folder: Path, profile: Profile, workers: int | None = None) -> None:
        import ctranslate2
        from faster_whisper import WhisperModel

        self.profile = profile
        small = (Path(folder) / "model.bin").stat().st_size < _PARALLEL_BELOW_BYTES
        cores = os.cpu_count() or 1
        count = workers or (min(2, cores) if small else 1)
        ctranslate2.set_random_seed(SEED)
        self.models = [WhisperModel(str(folder), device="auto", compute_type=profile.compute_type,
                                    cpu_threads=max(1, cores // count), num_workers=1) for _ in range(count)]

    def hear(self, audio: np.ndarray, model: Any = None) -> Heard:
        p = self.profile
        segments, _info = (model or self.models[0]).transcribe(
            np.asarray(audio, dtype=np.float32), language=p.language, beam_size=p.beam_size,
            without_timestamps=not p.timestamps, condition_on_previous_text=p.condition_on_previous_text,
            vad_filter=p.vad_filter, no_speech_threshold=p.no_speech_threshold,
            initial_prompt=p.initial_prompt or None)
        texts, spans, looped, per_window = [], [], False, {}
        for segment in segments:
            texts.append(segment.text.strip())
            spans.append((round(segment.start, 2), round(segment.end, 2)))
            # The window's whole text is what faster-whisper rates (each of its segments carries the ratio).
            looped = looped or segment.compression_ratio > COMPRESSION_RATIO_LIMIT
            per_window[segment.seek] = per_window.get(segment.seek, 0) + len(segment.tokens)
        looped = looped or any(tokens > max_new_tokens(min(len(audio), WINDOW)) for tokens in per_window.values())
        return Heard(" ".join(t for t in texts if t), tuple(spans) if p.timestamps else (), looped)

    def hear_all(self, clips: Sequence[np.ndarray], done: Callable[[int], None] = lambda count: None) -> list[Heard]:
        if len(self.models) == 1:
            return super().hear_all(clips, done)
        out: list[Heard | None] = [None] * len(clips)
        finished = [0]
        lock, failed = threading.Lock(), threading.Event()

        def share(k: int) -> None:
            """Copy k's clips in order: the same clips on the same copy, so its sampling repeats."""
            try:
                for i in range(k, len(clips), len(self.models)):
                    if failed.is_set():
                        return  # the other copy failed or was cancelled
                    out[i] = self.hear(clips[i], self.models[k])
                    with lock:
                        finished[0] += 1
                        count = finished[0]
                    done(count)
            except BaseException:
                failed.set()
                raise

        with ThreadPoolExecutor(len(self.models)) as pool:
            for future in [pool.submit(share, k) for k in range(len(self.models))]:
                future.result()
        return [h for h in out if h is not None]


@dataclass(frozen=True)
class CachedBottoms:
    """Where a run keeps the frozen encoder bottom's output per clip (stt.finetune.state_files), and how
    many top layers it trains given the encoder's layer count: the transformers decoder starts from those
    states where it finds them, which is the same forward (the bottom is the very same weights; its states are
    kept in float16, which wrote the same transcripts as float32 on every clip measured) without its most
    expensive part (distil-small.en's encoder: 1.9 s of a clip's 2.5 s on 2 cores)."""
    root: Path
    trained_layers: Callable[[int], int]


class TransformersDecoder(Decoder):
    """transformers' generate(), in float32 (on CUDA where there is one), one clip at a time."""

    def __init__(self, folder: Path, profile: Profile, bottoms: CachedBottoms | None = None) -> None:
        import torch
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        self.profile = profile
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.processor = WhisperProcessor.from_pretrained(str(folder))
        self.model = WhisperForConditionalGeneration.from_pretrained(str(folder), dtype=torch.float32)
        self.model.to(self.device).eval()
        self.multilingual = is_multilingual(self.model)
        generation = self.model.generation_config
        if getattr(generation, "no_timestamps_token_id", None) is None:
            # A folder saved without Whisper's generation settings: its tokenizer knows the token, and
            # transformers needs it for timestamps (which it turns on itself past 30 s).
            generation.no_timestamps_token_id = self.processor.tokenizer.convert_tokens_to_ids("<|notimestamps|>")
        self._bottoms: tuple[Any, Path] | None = None
        if bottoms is not None:
            from stt.finetune.encoder_states import EncoderSplit

            split = EncoderSplit(self.model, bottoms.trained_layers(len(self.model.get_encoder().layers)))
            folder = bottoms.root / split.fingerprint(self.processor.feature_extractor)
            self._bottoms = (split, folder) if folder.is_dir() else None

    def _encoded(self, audio: np.ndarray) -> Any:
        """The encoder's output of a clip of one window from its cached bottom states, or None."""
        import torch

        from stt.finetune.state_files import audio_key, read_state, sound

        if self._bottoms is None or len(audio) > WINDOW:
            return None
        split, folder = self._bottoms
        file = folder / f"{audio_key(audio)}.npy"
        if not sound(file):
            return None
        with torch.inference_mode():
            return split.top(torch.from_numpy(read_state(file))[None].to(self.device))

    def _options(self, long: bool) -> dict[str, Any]:
        p = self.profile
        options: dict[str, Any] = {"num_beams": p.beam_size, "do_sample": False, "return_segments": True,
                                   "return_timestamps": p.timestamps or long}
        if self.multilingual:
            options.update(language=p.language, task="transcribe")
        if p.initial_prompt:
            options["prompt_ids"] = self.processor.get_prompt_ids(p.initial_prompt, return_tensors="pt").to(self.device)
        if long:  # what transformers honours only past 30 s
            options["condition_on_prev_tokens"] = p.condition_on_previous_text
            if p.no_speech_threshold is not None:
                options.update(no_speech_threshold=p.no_speech_threshold, logprob_threshold=-1.0)
        return options

    def hear(self, audio: np.ndarray) -> Heard:
        import torch
        from transformers.modeling_outputs import BaseModelOutput

        long = len(audio) > WINDOW
        encoded = self._encoded(audio)
        with torch.inference_mode():
            if encoded is not None:
                out = self.model.generate(encoder_outputs=BaseModelOutput(last_hidden_state=encoded),
                                          **self._options(long))
            else:
                inputs = self.processor.feature_extractor(
                    np.asarray(audio, dtype=np.float32), sampling_rate=SAMPLE_RATE, return_tensors="pt",
                    return_attention_mask=True, **({"truncation": False, "padding": "longest"} if long else {}))
                out = self.model.generate(inputs.input_features.to(self.device),
                                          attention_mask=inputs.attention_mask.to(self.device), **self._options(long))
        text = self.processor.batch_decode(out["sequences"], skip_special_tokens=True)[0].strip()
        segments = out.get("segments", [[]])[0] if isinstance(out, dict) else []
        spans = tuple((round(float(s["start"]), 2), round(float(s["end"]), 2)) for s in segments)
        windows = max(1, -(-len(audio) // WINDOW))
        looped = compression_ratio(text) > COMPRESSION_RATIO_LIMIT or \
            len(out["sequences"][0]) > windows * max_new_tokens(min(len(audio), WINDOW))
        return Heard(text, spans if (self.profile.timestamps or long) else (), looped)


def open_decoder(folder: Path, profile: Profile, workers: int | None = None,
                 bottoms: CachedBottoms | None = None) -> Decoder:
    """The folder loaded the profile's way, decoding `workers` clips at a time where faster-whisper can (None:
    two on a machine of two cores or more), transformers from `bottoms` where it has a clip's; DecodeError
    saying why when it cannot be loaded."""
    try:
        if profile.runtime == FASTER_WHISPER:
            return FasterWhisperDecoder(Path(folder), profile, workers)
        return TransformersDecoder(Path(folder), profile, bottoms)
    except Exception as exc:  # noqa: BLE001 - any failure to load is a property of the folder, said as such
        raise DecodeError(f"{profile.runtime} cannot load the model at {folder}: {exc}") from exc
