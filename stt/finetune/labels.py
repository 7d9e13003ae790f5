"""What the decoder learns for each clip, in the token layout Whisper itself was trained on.

Three shapes, each what OpenAI's training data used (the Whisper paper, figure 1):

- speech:            <|startoftranscript|> [lang task] <|notimestamps|> text <|endoftext|>
- speech with times: <|startoftranscript|> [lang task] <|t0|> text <|t1|> <|endoftext|>
- no speech:         <|startoftranscript|> <|nospeech|> <|endoftext|>  (<|nocaptions|> on .en models)

The token predicted right after <|startoftranscript|> is where faster-whisper (and
OpenAI's decoder) read the probability that no one speaks, which gates out noise.
A spoken clip's target there (<|notimestamps|>, a timestamp, or the language) says
"speech" every time, so learning it from every clip teaches the model that nothing is
ever silent: after one Train click without marked clips, faster-whisper wrote words on
every noise clip it had skipped before (docs/performance.md, "As the assistant hears
it"). So a spoken clip's first target is not learned (`Target.skip`); a clip marked
without speech learns exactly that position, with Whisper's own no-speech token. A run
that trains such clips learns the position from both sides (`learn_start`), as Whisper
learned it: taught by the marked clips alone, tiny.en gave the first window of a long
recording a no-speech probability of 0.95 and garbled its first sentence.

A share of spoken clips is taught with timestamps, as distil-whisper keeps a fifth
of its data: faster-whisper decodes with timestamps by default and seeks through long
audio by them, and a model taught only <|notimestamps|> loses them. They are taught
joined, a few clips to one window with a segment each (`joined`), as Whisper's own
30 s windows hold several: taught one clip per window, tiny.en learned to write a whole
window as one segment, and faster-whisper then garbled the first sentence of a long
recording (docs/performance.md, "As the assistant hears it").
"""
from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from stt.finetune.data import Sample
from stt.models.decoding import SAMPLE_RATE

# Whisper's timestamp tokens are 20 ms apart, from <|0.00|> to <|30.00|>.
TIME_STEP = 0.02
LAST_TIMESTAMP = 1500
# Share of spoken clips taught with timestamps (distil-whisper trains 20% of its items that way).
TIMESTAMPED_SHARE = 0.2
# Timestamped clips are taught up to this many to a window (Whisper's windows are 30 s), a pause between them.
JOINED_CLIPS, JOINED_SECONDS = 3, 28.0
_PAUSE = SAMPLE_RATE * 2 // 5
# Speech is where 20 ms frames are louder than this share of the clip's loudest frame (-26 dB),
# and louder than a floor that keeps a silent clip silent.
_FRAME = SAMPLE_RATE // 50
_RELATIVE_LEVEL, _FLOOR = 0.05, 1e-3


@dataclass(frozen=True)
class TokenLayout:
    """The control tokens of one model's vocabulary, looked up by name in its tokenizer."""
    prefix: tuple[int, ...]      # <|startoftranscript|>, then the language and task on a multilingual model
    no_timestamps: int
    no_speech: int               # <|nospeech|>, or <|nocaptions|> in older (and English-only) vocabularies
    eot: int

    @property
    def timestamp_begin(self) -> int:
        """<|0.00|>: the timestamps follow <|notimestamps|> in every Whisper vocabulary."""
        return self.no_timestamps + 1

    def timestamp(self, seconds: float) -> int:
        return self.timestamp_begin + min(LAST_TIMESTAMP, max(0, round(seconds / TIME_STEP)))


def token_layout(tokenizer: Any, multilingual: bool, language: str = "en") -> TokenLayout:
    """The layout from the tokenizer's own ids, as faster-whisper's Tokenizer finds them."""
    def known(token: str) -> int | None:
        found = tokenizer.convert_tokens_to_ids(token)
        return None if found is None or found == tokenizer.unk_token_id and token != tokenizer.unk_token else found

    def required(token: str) -> int:
        found = known(token)
        if found is None:
            raise ValueError(f"the model's tokenizer has no {token} token")
        return found

    prefix = [required("<|startoftranscript|>")]
    if multilingual:
        prefix += [required(f"<|{language}|>"), required("<|transcribe|>")]
    no_speech = known("<|nospeech|>") or required("<|nocaptions|>")
    return TokenLayout(tuple(prefix), required("<|notimestamps|>"), no_speech, required("<|endoftext|>"))


@dataclass(frozen=True)
class Target:
    ids: list[int]   # the whole sequence, <|startoftranscript|> first: the decoder reads ids[:-1], learns ids[1:]
    skip: int        # leading targets the loss leaves out: the no-speech position of a spoken clip


def _words(tokenizer: Any, text: str) -> list[int]:
    # A leading space, as Whisper writes every transcript (its first word is 'Ġword', never 'word').
    return list(tokenizer(" " + text.strip(), add_special_tokens=False).input_ids)


def target(layout: TokenLayout, tokenizer: Any, text: str, max_length: int,
           span: tuple[float, float] | None = None, learn_start: bool = False) -> Target:
    """The decoder's target for one clip: `text` ("" when no one speaks), with timestamps around it
    when `span` (where the speech starts and ends, in seconds) is given. A spoken clip's no-speech
    position is learned only with `learn_start` (the run trains clips without speech too)."""
    if not text.strip():
        return Target([layout.prefix[0], layout.no_speech, layout.eot], skip=0)
    if span is not None:
        return timed_target(layout, tokenizer, [(text, span)], max_length, learn_start)
    head, tail = [*layout.prefix, layout.no_timestamps], [layout.eot]
    # A transcript too long for the decoder keeps its end token, so the model still learns to stop.
    words = _words(tokenizer, text)[:max(0, max_length - len(head) - len(tail))]
    return Target([*head, *words, *tail], skip=0 if learn_start else 1)


def timed_target(layout: TokenLayout, tokenizer: Any, segments: Sequence[tuple[str, tuple[float, float]]],
                 max_length: int, learn_start: bool = False) -> Target:
    """The target of a window holding several utterances, each a segment <|start|> text <|end|> as Whisper
    writes them. Segments that do not fit the decoder are left out whole (the first is cut instead)."""
    head, body = [*layout.prefix], []
    for i, (text, (start, end)) in enumerate(segments):
        segment = [layout.timestamp(start), *_words(tokenizer, text), layout.timestamp(max(end, start + TIME_STEP))]
        room = max_length - len(head) - len(body) - 1
        if len(segment) > room:
            if i == 0:
                body = [*segment[:max(0, room - 1)], segment[-1]]
            break
        body += segment
    return Target([*head, *body, layout.eot], skip=0 if learn_start else 1)


def speech_span(audio: np.ndarray) -> tuple[float, float]:
    """Where the loud part of a clip starts and ends (seconds), for its timestamps: the first and last
    20 ms frame above a share of the loudest; the whole clip when no frame stands out."""
    samples = np.asarray(audio, dtype=np.float32)
    frames = len(samples) // _FRAME
    length = len(samples) / SAMPLE_RATE
    if frames == 0:
        return 0.0, length
    level = np.sqrt(np.mean(samples[:frames * _FRAME].reshape(frames, _FRAME) ** 2, axis=1))
    loud = np.flatnonzero(level > max(_FLOOR, _RELATIVE_LEVEL * float(level.max())))
    if len(loud) == 0:
        return 0.0, length
    start = loud[0] * _FRAME / SAMPLE_RATE
    end = min(length, (loud[-1] + 1) * _FRAME / SAMPLE_RATE)
    # Whisper's timestamps round down at the start and up at the end, so the span holds the speech.
    return float(np.floor(start / TIME_STEP) * TIME_STEP), float(np.ceil(end / TIME_STEP) * TIME_STEP)


def learned_forms(samples: Sequence[Sample]) -> tuple[list[Sample], list[tuple[Sample, list[Any]]]]:
    """(clips learned one to a window, windows of timestamped clips with their segments). The built-in clips
    (negative ids) are joined apart from the user's, so their windows are the same every run and the
    warm-up caches them (stt/runs/warm.py)."""
    plain = [s for s in samples if not (s.text and timestamped(s.id))]
    timed = [s for s in samples if s.text and timestamped(s.id)]
    return plain, joined([s for s in timed if s.id >= 0]) + joined([s for s in timed if s.id < 0])


def joined(samples: Sequence[Sample]) -> list[tuple[Sample, list[tuple[str, tuple[float, float]]]]]:
    """Spoken clips joined into windows of up to JOINED_CLIPS clips and JOINED_SECONDS, in the order given,
    with a short pause between them: each window a Sample (its clips' texts its parts) and its segments
    (each clip's text and where its speech lies in the window). The same clips make the same windows, so
    their encoder states are cached like any clip's."""
    windows, group = [], []
    for sample in [*samples, None]:
        length = sum(len(s.audio) for s in group) + _PAUSE * len(group)
        if sample is None or len(group) == JOINED_CLIPS or \
                group and length + len(sample.audio) > JOINED_SECONDS * SAMPLE_RATE:
            if group:
                windows.append(_window(group))
            group = []
        if sample is not None:
            group.append(sample)
    return windows


def _window(group: list[Sample]) -> tuple[Sample, list[tuple[str, tuple[float, float]]]]:
    pause, audio, segments, offset = np.zeros(_PAUSE, np.float32), [], [], 0.0
    for sample in group:
        start, end = speech_span(sample.audio)
        segments.append((sample.text, (offset + start, offset + end)))
        audio += [np.asarray(sample.audio, np.float32), pause]
        offset += (len(sample.audio) + _PAUSE) / SAMPLE_RATE
    # A synthetic id (negative, as other synthetic clips' are) named by its clips, for the seeded order.
    window_id = -1 - zlib.crc32(",".join(str(s.id) for s in group).encode())
    return (Sample(window_id, " ".join(s.text.strip() for s in group), np.concatenate(audio[:-1]),
                   parts=tuple(s.text for s in group)), segments)


def timestamped(sample_id: int, share: float = TIMESTAMPED_SHARE) -> bool:
    """Whether a spoken clip is taught with timestamps: a fixed share, chosen by its id, so a clip keeps
    its form from run to run (and a rehearsed clip is taught as it was learned)."""
    return zlib.crc32(str(sample_id).encode()) % 1000 < share * 1000
