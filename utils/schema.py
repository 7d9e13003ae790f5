"""Every table the app reads or writes, created and migrated in one place, once, at start-up.

The seed's table is the assistant's: it is created only when missing (an empty
embedded database) and never altered. Everything the app keeps for itself lives
in tables and indexes prefixed `s2s_app_`. Columns added since a table was first
created are added in place by migrate(), so a database from an older version of
the app keeps working.
"""
from __future__ import annotations

import sqlite3

TABLE = "s2s_training_data"
SUGGESTIONS = "s2s_app_suggestions"
# Reads of the flags go through the covering index: read from the table, they
# sit behind the blob and cost a walk over its overflow pages.
BY_LIST = f"{TABLE} d INDEXED BY s2s_app_idx_list"

# The seed's schema, verbatim in meaning. AUTOINCREMENT so an id is never reused
# after a delete: the app's own tables refer to items by id.
SEED_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    transcript TEXT,
    audio_blob BLOB,
    is_reviewed INTEGER DEFAULT 0,
    is_trained INTEGER DEFAULT 0,
    timestamp DATETIME DEFAULT CURRENT_TIMESTAMP
)
"""

APP_SCHEMA = f"""
-- The flags, and the transcript so "pending" (which needs words) is counted from the index alone.
CREATE INDEX IF NOT EXISTS s2s_app_idx_review ON {TABLE}(is_reviewed, is_trained, transcript);
DROP INDEX IF EXISTS s2s_app_idx_flags;  -- its two columns lead the index above
CREATE INDEX IF NOT EXISTS s2s_app_idx_list ON {TABLE}(id, is_reviewed, is_trained, timestamp, transcript);
CREATE TABLE IF NOT EXISTS s2s_app_audio_meta (
    item_id INTEGER PRIMARY KEY,
    blob_length INTEGER NOT NULL,
    mime TEXT,
    duration_s REAL,
    sample_rate INTEGER,
    error TEXT
);
-- Items the reviewer set aside as a regression check: never trained on, and a new
-- model is deployed only if its WER on them does not rise.
CREATE TABLE IF NOT EXISTS s2s_app_regression (
    item_id INTEGER PRIMARY KEY
);
-- Items a run held out to measure on: once held out, always held out (never trained on),
-- however the counts that chose them change later.
CREATE TABLE IF NOT EXISTS s2s_app_heldout (
    item_id INTEGER PRIMARY KEY
);
-- Clips the reviewer marked as holding no speech (a false wake, a cough, the television): their
-- transcript is empty on purpose, and training teaches the model to write nothing for them.
CREATE TABLE IF NOT EXISTS s2s_app_no_speech (
    item_id INTEGER PRIMARY KEY
);
-- Items an imported dataset put in its train split: the held-out hash never picks them, so a
-- dataset's own split comes across whole (utils/importer.py).
CREATE TABLE IF NOT EXISTS s2s_app_train_split (
    item_id INTEGER PRIMARY KEY
);
"""

# Training runs and the items each used, in which role, with the transcript it saw.
RUNS_SCHEMA = """
CREATE TABLE IF NOT EXISTS s2s_app_train_runs (
    job_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    phase TEXT,
    step INTEGER DEFAULT 0,
    total INTEGER DEFAULT 0,
    loss REAL,
    mode TEXT,
    items INTEGER DEFAULT 0,
    heldout_items INTEGER DEFAULT 0,
    pid INTEGER,
    -- 0, or the Unix time a cancel was asked for (so a worker that ignores it can be ended later)
    cancel_requested INTEGER DEFAULT 0,
    started_at TEXT NOT NULL,
    phase_started_at TEXT,
    step_at TEXT,
    heartbeat_at TEXT,
    finished_at TEXT,
    message TEXT,
    deployed INTEGER DEFAULT 0,
    version TEXT,
    result_json TEXT
);
CREATE TABLE IF NOT EXISTS s2s_app_train_items (
    job_id TEXT NOT NULL,
    item_id INTEGER NOT NULL,
    role TEXT NOT NULL,
    transcript TEXT,
    PRIMARY KEY (job_id, item_id)
);
-- Kept versions deployed by hand (rollback, or forward again): the history shows them between the runs.
CREATE TABLE IF NOT EXISTS s2s_app_rollbacks (
    at TEXT NOT NULL,
    version TEXT NOT NULL,
    previous TEXT
);
"""

# What the deployed model hears in each clip, per model (its fingerprint).
SUGGESTIONS_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {SUGGESTIONS} (
    item_id INTEGER NOT NULL,
    model_fingerprint TEXT NOT NULL,
    transcript_version TEXT,
    text TEXT,
    avg_logprob REAL,
    wer REAL,
    created_at TEXT,
    PRIMARY KEY (item_id, model_fingerprint)
)
"""

# Find-and-replace batches (utils/bulk.py): what each changed, so the batch can be undone as one.
BULK_SCHEMA = """
CREATE TABLE IF NOT EXISTS s2s_app_bulk_batches (
    batch_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    find TEXT NOT NULL,
    replace TEXT NOT NULL,
    changed INTEGER NOT NULL,
    undone_at TEXT
);
CREATE TABLE IF NOT EXISTS s2s_app_bulk_edits (
    batch_id TEXT NOT NULL,
    item_id INTEGER NOT NULL,
    before TEXT,
    after TEXT NOT NULL,
    was_trained INTEGER NOT NULL,
    PRIMARY KEY (batch_id, item_id)
);
"""

# Columns added after their table first shipped: (table, column, declaration).
ADDED_COLUMNS = [("s2s_app_train_runs", "step_at", "TEXT"),
                 # The step a phase was entered at: training resumes at step 41 after a validation.
                 ("s2s_app_train_runs", "phase_first_step", "INTEGER DEFAULT 0"),
                 # The suggestion's words with their times and probabilities, as JSON (stt/review/transcriber.Word).
                 ("s2s_app_suggestions", "words_json", "TEXT"),
                 # For raw PCM, the [audio] settings the facts were measured with (audio.pcm_settings); NULL for
                 # containers. Facts measured under other settings are dropped when the app starts.
                 ("s2s_app_audio_meta", "pcm_settings", "TEXT"),
                 # Whether the item was reviewed when a find-and-replace batch changed it: undo leaves it alone
                 # if that changed since.
                 ("s2s_app_bulk_edits", "was_reviewed", "INTEGER"),
                 # A digest of the audio a run read for the item (utils/runs.audio_digest): marked trained only
                 # if the item still holds it. NULL in runs from before it was kept.
                 ("s2s_app_train_items", "audio_digest", "TEXT")]


def migrate(conn: sqlite3.Connection) -> None:
    """Create what is missing and add columns newer versions need; safe to run on every start."""
    conn.execute(SEED_SCHEMA)
    conn.executescript(APP_SCHEMA + RUNS_SCHEMA + SUGGESTIONS_SCHEMA + ";" + BULK_SCHEMA)
    for table, column, declaration in ADDED_COLUMNS:
        if column not in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
