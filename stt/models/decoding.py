"""How much Whisper hears and may write per clip: the window and the token cap that the editor's suggestions
(stt/review/transcriber.py) and a run's measuring (stt/assistant/decoder.py) share.

They share no more than that: a run hears a model the way the assistant decodes ([assistant] settings:
faster-whisper's beam search and its gates) and scores it with Whisper's English normalizer
(stt/assistant/evaluation.py), while a suggestion is one greedy decode, so a run's WER is not the
figure the editor shows for one clip.
"""
from __future__ import annotations

SAMPLE_RATE = 16000
# Whisper sees 30-second windows; longer clips are cut into windows of this many samples.
WINDOW = 30 * SAMPLE_RATE
# Greedy decoding can loop ("and, and, and, ...") until Whisper's 448-token limit, which
# costs ~10 s on CPU for a 3 s clip (seen in the benchmark). Nobody says more than ~5 tokens
# a second, so the output is capped at twice that, plus room for short clips.
_TOKENS_PER_SECOND, _MIN_TOKENS, _MAX_TOKENS = 10, 16, 440


def max_new_tokens(samples: int) -> int:
    """The generation cap for a clip of `samples` 16 kHz samples (one 30 s window at most); measuring counts
    a decode past it as looped."""
    return min(_MIN_TOKENS + int(_TOKENS_PER_SECOND * min(samples, WINDOW) / SAMPLE_RATE), _MAX_TOKENS)
