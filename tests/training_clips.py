"""Spoken clips for the real-model training test and benchmark (espeak-ng, so no downloads).

A made-up smart home whose device and people names Whisper has never heard
("Kwintara lamp", "Zorblax", ...), the case fine-tuning is for. Training and
held-out sentences are distinct but share the vocabulary, so held-out WER
measures whether the names were learned rather than whole sentences memorised.
The regression sentences are ordinary speech without any of those names: their
WER must not rise, or the model is forgetting how to transcribe everything else.
"""
from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

from stt.data import Sample
from tests.speech import espeak_16k_wav
from utils.audio import load_for_whisper
from utils.config import AudioConfig

NAMES = ["Kwintara lamp", "Velmora heater", "Zorblax", "Orvane speaker", "Brightwatch camera",
         "Quillory fan", "Dravnic oven", "Selvaro blinds"]
TEMPLATES = [
    "Turn on the {}.", "Switch off the {} please.", "Is the {} still running?", "Set the {} to night mode.",
    "Tell me when the {} is ready.", "Reset the {} in the kitchen.", "Please check the {} upstairs.",
    "Schedule the {} for seven tomorrow.", "Why is the {} so loud?", "Move the {} to the bedroom.",
    "How long has the {} been on?", "Clean the {} on Saturday.",
]
REGRESSION = [
    "The weather will be sunny tomorrow afternoon.", "Please call my sister after dinner.",
    "How many days are left until the holidays?", "Add bread and eggs to the shopping list.",
    "The train to the city leaves at half past eight.", "I would like a cup of coffee with milk.",
    "Remind me to pay the electricity bill on Friday.", "What is the capital of Australia?",
    "My brother is flying to Berlin next week.", "Turn the music down a little.",
    "The children are playing in the garden.", "Send a message saying I will be late.",
    "Can you find a good recipe for apple pie?", "The meeting has been moved to Wednesday morning.",
    "It looks like it is going to rain tonight.", "Please wake me up at six thirty.",
    "How far is it to the nearest petrol station?", "She bought a new bicycle last summer.",
    "What time does the museum open on Sunday?", "We need to leave the house in ten minutes.",
    "The dog has not been walked today.", "Read me the latest news headlines.",
    "I left my keys on the kitchen table.", "Our neighbours are having a party this evening.",
]
VOICES = ["en-us", "en-gb"]


def _sentences() -> list[str]:
    # Each template with each name, interleaved so neighbours differ in both.
    return [t.format(n) for i, t in enumerate(TEMPLATES) for n in NAMES[i % 2::2][:4]]


def _speak(texts: list[str], first_id: int) -> list[Sample]:
    def one(i: int) -> Sample:
        wav = espeak_16k_wav(texts[i], voice=VOICES[i % len(VOICES)])
        return Sample(first_id + i, texts[i], load_for_whisper(wav, AudioConfig()))

    with ThreadPoolExecutor(4) as pool:  # espeak-ng runs as a subprocess; threads just wait on it
        return list(pool.map(one, range(len(texts))))


def domain_clips(train_count: int, heldout_count: int) -> tuple[list[Sample], list[Sample]]:
    """(train, held-out) domain clips. Each template gives one held-out sentence, its name
    rotating, so every name is heard both in training and in held-out sentences."""
    per_template = len(_sentences()) // len(TEMPLATES)
    sentences = _sentences()
    held = [sentences[t * per_template + t % per_template] for t in range(len(TEMPLATES))]
    rest = [s for s in sentences if s not in held]
    if train_count > len(rest) or heldout_count > len(held):
        raise ValueError(f"only {len(rest)} training and {len(held)} held-out sentences")
    return _speak(rest[:train_count], 1), _speak(held[:heldout_count], 10_000)


def regression_clips() -> list[Sample]:
    """Ordinary sentences, with negative ids like the folder-based regression clips."""
    samples = _speak(REGRESSION, 0)
    return [Sample(-1 - s.id, s.text, s.audio) for s in samples]
