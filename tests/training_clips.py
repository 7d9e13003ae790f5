"""Spoken clips for the real-model training tests and benchmark (espeak-ng, so no downloads).

Three rounds of a user's life with the assistant, each with its own made-up
vocabulary Whisper has never heard: smart-home devices, then people and places,
then medicines and apps. Within a round the training and held-out sentences
share the names but not their shapes (held-out templates are never trained
on), so held-out WER measures whether the names were learned rather than
whole sentences memorised. The "user" speaks in six espeak-ng voices at
several speeds, none of them a voice of the built-in ordinary speech
(stt/finetune/ordinary), so what that set teaches about espeak is not what is measured.

`ordinary_clips` are everyday sentences without any of the names, never
trained on and not in the built-in set: their WER must not rise, or the model
is forgetting how to transcribe everything else.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from stt.finetune.data import Sample
from tests.speech import espeak_16k_wav
from utils.audio import load_for_whisper
from utils.config import AudioConfig


@dataclass(frozen=True)
class Vocabulary:
    names: tuple[str, ...]
    train_templates: tuple[str, ...]
    heldout_templates: tuple[str, ...]


ROUNDS = [
    Vocabulary(
        names=("Kwintara lamp", "Velmora heater", "Zorblax", "Orvane speaker", "Brightwatch camera",
               "Quillory fan", "Dravnic oven", "Selvaro blinds"),
        train_templates=("Turn on the {}.", "Switch off the {} please.", "Is the {} still running?",
                         "Set the {} to night mode.", "Tell me when the {} is ready.",
                         "Reset the {} in the kitchen.", "Please check the {} upstairs.",
                         "Schedule the {} for seven tomorrow."),
        heldout_templates=("Why does the {} keep beeping at night?", "Could you move the {} closer to the window?",
                           "I think the {} needs a new battery.", "Has anyone used the {} today?")),
    Vocabulary(
        names=("Wojciech", "Ysolde", "Tamsin Abernathy", "Oyelaran", "Kettleby", "Marrowgate",
               "Pellucida", "Thistlewaite"),
        train_templates=("Call {} on my mobile.", "Send a message to {}.", "How far is it to {}?",
                         "Remind me to visit {} on Sunday.", "Book a table near {} for two.",
                         "Show me the photos from {}.", "What did {} say yesterday?",
                         "Add {} to my contacts."),
        heldout_templates=("We are driving to {} after the football match.", "Did {} answer my email about the trip?",
                           "The parcel for {} arrived this morning.", "Let me know when {} is free to talk.")),
    Vocabulary(
        names=("Zentorva", "Myraclex", "Plunkwise", "Dovabrin", "Halvastat", "Snibbler", "Quorvane drops",
               "Trellomax"),
        train_templates=("Open {} on my phone.", "Did I take my {} this morning?", "Order more {} from the pharmacy.",
                         "Update {} to the latest version.", "How much {} is left?",
                         "Remind me about the {} at noon.", "Is {} safe with coffee?",
                         "Close {} and lock the screen."),
        heldout_templates=("The doctor said {} should be taken with food.", "My sister also uses {} every evening.",
                           "Please write {} on tomorrow's list.", "I could not find {} anywhere in the house.")),
]

ORDINARY = [
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
    "The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background.",
    "It is easy to tell the depth of a well.", "These days a chicken leg is a rare dish.",
    "The juice of lemons makes fine punch.", "The box was thrown beside the parked truck.",
    "Four hours of steady work faced us.", "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.", "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.", "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.", "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.", "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.", "The girl at the booth sold fifty bonds.",
    "The small pup gnawed a hole in the sock.", "The fish twisted and turned on the bent hook.",
    "Press the pants and sew a button on the vest.", "The swan dive was far short of perfect.",
    "The beauty of the view stunned the young boy.", "Two blue fish swam in the tank.",
]
# The user's voices: espeak-ng voices and variants that the built-in set (stt/finetune/ordinary) does not use.
VOICES = [("en-us", 160), ("en-gb", 150), ("en-us+f3", 175), ("en-gb-scotland+m3", 145),
          ("en-029", 165), ("en-us-nyc+f2", 185)]


# Voices that neither the user's clips above nor the built-in set use: ordinary speech in them is what
# a run never heard in any form.
FRESH_VOICES = [("en-gb-x-gbclan", 160), ("en-gb-x-gbcwmd+f1", 170), ("en-us+m4", 150), ("en-gb-scotland+f2", 165)]


def speak(texts: list[str], first_id: int, voice_offset: int = 0,
          voices: list[tuple[str, int]] = VOICES) -> list[Sample]:
    """One clip per text, the voices taking turns, with ids counting up from `first_id`."""
    def one(i: int) -> Sample:
        voice, speed = voices[(i + voice_offset) % len(voices)]
        wav = espeak_16k_wav(texts[i], voice=voice, speed=speed)
        return Sample(first_id + i, texts[i], load_for_whisper(wav, AudioConfig()))

    with ThreadPoolExecutor(4) as pool:  # espeak-ng runs as a subprocess; threads just wait on it
        return list(pool.map(one, range(len(texts))))


def round_sentences(number: int) -> tuple[list[str], list[str]]:
    """(training, held-out) sentences of round `number` (1-based): every training template with
    four names and every held-out template with four others, interleaved so neighbours differ."""
    vocab = ROUNDS[number - 1]
    train = [t.format(n) for i, t in enumerate(vocab.train_templates) for n in vocab.names[i % 2::2]]
    heldout = [t.format(n) for i, t in enumerate(vocab.heldout_templates) for n in vocab.names[(i + 1) % 2::2]]
    return train, heldout


def round_clips(number: int, train_count: int | None = None,
                heldout_count: int | None = None) -> tuple[list[Sample], list[Sample]]:
    """(train, held-out) clips of round `number`; ids are 1000 * round + index (held-out from + 500)."""
    train, heldout = round_sentences(number)
    return (speak(train[:train_count], 1000 * number),
            speak(heldout[:heldout_count], 1000 * number + 500, voice_offset=3))


def round_unseen_clips(number: int) -> list[Sample]:
    """Clips no run of round `number` trains on or watches: its held-out templates with the names
    the held-out clips do not pair them with, in other voices. The benchmark reports the domain WER
    on these, since a run's stop before memorisation watches the loss of its held-out clips."""
    vocab = ROUNDS[number - 1]
    texts = [t.format(n) for i, t in enumerate(vocab.heldout_templates) for n in vocab.names[i % 2::2]]
    return speak(texts, 1000 * number + 700, voice_offset=0)


def ordinary_clips(count: int | None = None, fresh_voices: bool = False) -> list[Sample]:
    """Ordinary sentences, with negative ids like the folder-based regression clips; in the user's
    voices, or with `fresh_voices` in voices no clip of any run uses."""
    samples = speak(ORDINARY[:count], 0, voice_offset=1, voices=FRESH_VOICES if fresh_voices else VOICES)
    return [Sample(-1 - s.id, s.text, s.audio) for s in samples]
