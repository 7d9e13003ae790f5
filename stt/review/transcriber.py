"""Transcribe one clip with the deployed Whisper model, for model-assisted review.

The reviewer sees what the current model hears beside what the assistant
stored; where they disagree is where review pays off. Loading a model takes
seconds, so one loaded `Transcriber` is kept per process and swapped only when
the folder at the model path changes (a newly trained model, or a rollback).

torch, transformers and faster_whisper are imported inside the functions that
need them: the web app must start in well under a second, and most requests
never transcribe anything.
"""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stt.models.decoding import SAMPLE_RATE, WINDOW, max_new_tokens
from stt.models.model_files import check_shapes
from stt.models.model_format import CTRANSLATE2, detect_format, is_multilingual

_WINDOW_FRAMES = 3000  # one 30 s window in log-mel frames, the unit of faster-whisper's segment.seek
# Measured in bench/transcribe_bench.py on tiny.en: int8 is a little faster than float32 on
# CPU with no worse WER (41.5% vs 44.2% on the espeak set); on larger models such as
# distil-small.en int8's speed-up on CPU is larger still.
CT2_COMPUTE_TYPE = "int8"


class ModelLoadError(RuntimeError):
    """The folder looked like a model but could not be loaded; the message says why."""


@dataclass(frozen=True)
class Word:
    """One word of a transcript with where it is in the clip (seconds) and how sure the model was of it."""
    word: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True)
class Transcription:
    text: str
    # Mean log-probability per generated token (end-of-text included): near 0 the model
    # is sure, below about -1 it is guessing. Comparable only between runs of one model.
    avg_logprob: float
    words: tuple[Word, ...] = ()


def model_fingerprint(path: Path) -> str:
    """A short hash of the model folder's file names, sizes and modification times.

    Cheap enough for every request (a few stat calls), and it changes whenever a
    training run deploys a new model or a rollback puts an older one back, so
    cached transcripts are never served for a model other than the current one.
    """
    path = Path(path)
    digest = hashlib.sha1()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        try:
            stat = file.stat()
        except OSError:
            continue  # removed mid-deploy; the next request sees the finished folder
        digest.update(f"{file.relative_to(path).as_posix()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def check_model(path: Path) -> tuple[str, str]:
    """The format and fingerprint of the model at `path`; ModelFormatError when there is none usable."""
    return detect_format(path), model_fingerprint(path)


class Transcriber:
    """One loaded model. `transcribe` is serialised by a lock: on a CPU box one
    decode already uses every core, and the Hugging Face model is not safe to
    share between threads."""

    def __init__(self, path: Path, compute_type: str = CT2_COMPUTE_TYPE) -> None:
        self.path = Path(path)
        self.format, self.fingerprint = check_model(self.path)
        self._lock = threading.Lock()
        try:
            if self.format == CTRANSLATE2:
                self._load_ct2(compute_type)
            else:
                self._load_hf()
        except Exception as exc:  # any failure to load is a property of the folder, reported as such
            raise ModelLoadError(f"the {self.format} model at {self.path} cannot be loaded: {exc}") from exc

    def _load_ct2(self, compute_type: str) -> None:
        from faster_whisper import WhisperModel

        self._model: Any = WhisperModel(str(self.path), device="cpu", compute_type=compute_type)
        self.english_only = not self._model.model.is_multilingual

    def _load_hf(self) -> None:
        import torch
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        self._processor = WhisperProcessor.from_pretrained(str(self.path))
        self._model = WhisperForConditionalGeneration.from_pretrained(str(self.path), dtype=torch.float32).eval()
        self.english_only = not is_multilingual(self._model)

    def transcribe(self, audio: np.ndarray) -> Transcription:
        """Greedy, timestamp-free decoding of mono float32 16 kHz samples, in English."""
        with self._lock:
            if self.format == CTRANSLATE2:
                return self._transcribe_ct2(audio)
            return self._transcribe_hf(audio)

    def _transcribe_ct2(self, audio: np.ndarray) -> Transcription:
        # Temperature 0 only: the fallback re-decodes at higher temperatures, which makes
        # the time unpredictable and the answer random, so a cached suggestion would not repeat.
        # word_timestamps: faster-whisper aligns each word to the audio (cross-attention, dynamic time
        # warping), so the editor can play one word and mark those the model was unsure of.
        segments, _info = self._model.transcribe(
            audio, language="en" if self.english_only else None, beam_size=1, temperature=0.0,
            without_timestamps=True, condition_on_previous_text=False, vad_filter=False,
            max_new_tokens=max_new_tokens(len(audio)), word_timestamps=True)
        texts, logprob_sum, tokens, words = [], 0.0, 0, []
        for segment in segments:
            # With word timings faster-whisper decodes again from the last word's end, and in the silence
            # after the speech it then "hears" things ("Thank you."): keep only what each 30 s window
            # gave at its first decode, as without word timings.
            if segment.seek % _WINDOW_FRAMES:
                continue
            texts.append(segment.text.strip())
            # avg_logprob averages over the segment's tokens plus end-of-text; weight it back.
            logprob_sum += segment.avg_logprob * (len(segment.tokens) + 1)
            tokens += len(segment.tokens) + 1
            words += [Word(w.word.strip(), round(w.start, 2), round(w.end, 2), round(w.probability, 3))
                      for w in segment.words or [] if w.word.strip()]
        return Transcription(" ".join(t for t in texts if t), logprob_sum / tokens if tokens else 0.0, tuple(words))

    def _transcribe_hf(self, audio: np.ndarray) -> Transcription:
        import torch

        texts, scores, words = [], [], []
        # Token times need the model's alignment heads (Whisper's published ones; CTranslate2 imports keep them).
        timed = bool(getattr(self._model.generation_config, "alignment_heads", None))
        # Cut into 30 s windows ourselves: the assistant's clips are short, and this keeps
        # per-token scores simple where transformers' long-form mode would need timestamps.
        for start in range(0, max(len(audio), 1), WINDOW):
            window = audio[start:start + WINDOW]
            inputs = self._processor.feature_extractor(
                window, sampling_rate=SAMPLE_RATE, return_tensors="pt", return_attention_mask=timed)
            options: dict[str, Any] = {} if self.english_only else {"language": "en", "task": "transcribe"}
            if timed:
                options.update(return_token_timestamps=True, attention_mask=inputs.attention_mask)
            with torch.inference_mode():
                out = self._model.generate(inputs.input_features, num_beams=1, do_sample=False,
                                           return_dict_in_generate=True, output_scores=True,
                                           max_new_tokens=max_new_tokens(len(window)), **options)
                # normalize_logits: log-softmax of the processed logits, i.e. the log-probability
                # of each chosen token, the same quantity faster-whisper averages.
                step_scores = self._model.compute_transition_scores(out["sequences"], out["scores"],
                                                                    normalize_logits=True)[0]
            sequence = out["sequences"][0]
            texts.append(self._processor.batch_decode(out["sequences"], skip_special_tokens=True)[0].strip())
            scores.extend(float(s) for s in step_scores if torch.isfinite(s))
            times = out["token_timestamps"][0].tolist() if timed else None
            words += _words_of(self._processor.tokenizer, sequence.tolist(), step_scores.tolist(), times,
                               start / SAMPLE_RATE, len(window) / SAMPLE_RATE)
        return Transcription(" ".join(t for t in texts if t), sum(scores) / len(scores) if scores else 0.0,
                             tuple(words))


def _words_of(tokenizer: Any, sequence: list[int], step_scores: list[float], times: list[float] | None,
              offset: float, length: float) -> list[Word]:
    """Group generated tokens into words (a token starting with a space starts one).

    A word's probability is the product of its tokens'. transformers' token timestamps mark
    where each token ends, so a word runs from the end of the word before it to the end of its
    last token; a span too short to hear reaches halfway to the next word's end. Without
    alignment heads (`times` None) a word spans the whole window, so playing it plays the clip.
    """
    generated = len(step_scores)
    prompt = len(sequence) - generated  # the forced prefix tokens carry no score
    special = set(tokenizer.all_special_ids)
    groups: list[tuple[str, float, int]] = []  # text, log-probability, index of its last token
    for i in range(prompt, len(sequence)):
        token = sequence[i]
        if token in special:
            continue
        piece = tokenizer.decode([token])
        logprob = step_scores[i - prompt]
        if groups and not piece.startswith(" "):
            text, total, _ = groups[-1]
            groups[-1] = (text + piece, total + logprob, i)
        else:
            groups.append((piece, logprob, i))
    ends = [min(times[i], length) if times else length for _, _, i in groups]
    words = []
    for k, (text, logprob, _) in enumerate(groups):
        begin = ends[k - 1] if k and times else 0.0
        end = ends[k]
        if times and end - begin < 0.1:
            end = min(length, (end + ends[k + 1]) / 2 if k + 1 < len(ends) else end + 0.2)
        if text.strip():
            words.append(Word(text.strip(), round(offset + begin, 2), round(offset + max(end, begin), 2),
                              round(float(np.exp(logprob)), 3)))
    return words


_cache_lock = threading.Lock()
_cached: Transcriber | None = None
# Why a model folder could not be loaded, by (path, fingerprint): what health reports without loading it.
_failed: dict[tuple[Path, str], str] = {}


def load_problem(path: Path) -> str | None:
    """Why the model at `path` cannot be used, or None when nothing known stands in the way.

    Cheap enough for a health check: the folder's format, its config against its weights'
    headers, and a failure this process already met loading this very folder (a corrupt
    CTranslate2 model.bin shows only when loaded).
    """
    try:
        _format, fingerprint = check_model(path)
        check_shapes(path)
    except Exception as exc:  # a weights file that is not safetensors at all fails in its reader
        return str(exc)
    return _failed.get((Path(path), fingerprint))


def get_transcriber(path: Path) -> Transcriber:
    """The process's loaded model for `path`, reloaded when the folder's fingerprint changed.

    Loading happens under the lock, so concurrent first requests wait for one
    load instead of each loading a copy of the model.
    """
    global _cached
    path = Path(path)
    _format, fingerprint = check_model(path)
    with _cache_lock:
        if _cached is not None and _cached.path == path and _cached.fingerprint == fingerprint:
            return _cached
        _cached = None  # let the old model be freed before the new one takes the memory
        try:
            _cached = Transcriber(path)
        except ModelLoadError as exc:
            _failed[(path, fingerprint)] = str(exc)
            raise
        return _cached
