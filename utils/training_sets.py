"""Which items a run may use, and in which role: the one definition that the stats, the
held-out split and a run's plan share, so "pending" on the dashboard is exactly what Train
trains on.

Each set is an SQL predicate over the shared table (alias `d`), combined from a few
plain rules: reviewed, not trained, words in the transcript, audio not known to be
unusable, and whether the reviewer set it aside as a regression check or an earlier
run held it out.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from utils.schema import BY_LIST, TABLE

# Knuth's multiplicative hash, in SQL integer arithmetic, spreads ids evenly over
# 0..2^32 so "held out" is a stable function of the id alone.
HASH_SQL = "((d.id * 2654435761) % 4294967296)"
HASH_SPACE = 4294967296
IS_REGRESSION = "d.id IN (SELECT item_id FROM s2s_app_regression)"
NOT_REGRESSION = f"NOT {IS_REGRESSION}"
# A reviewed item with no words teaches the model nothing unless it is marked as holding no speech (TEACHES).
# SQLite's trim() strips spaces only: name the same blanks Python strips (see has_text), so the
# stats, the plan and the worker agree on what "no words" is.
BLANKS = " \t\n\v\f\r\u00a0"
# Only text counts: a transcript stored as a BLOB or a number, or as bytes that are not UTF-8, waits until
# it is saved as text. Only a transcript with a byte beyond printable ASCII (GLOB, in C) is checked in Python.
IS_TEXT = ("typeof(d.transcript) = 'text' AND (d.transcript NOT GLOB '*[^ -~]*' "
           "OR s2s_valid_utf8(CAST(d.transcript AS BLOB)))")
HAS_TEXT = (f"{IS_TEXT} AND "
            f"trim(d.transcript, char({', '.join(str(ord(c)) for c in BLANKS)})) <> ''")
IS_NO_SPEECH = "d.id IN (SELECT item_id FROM s2s_app_no_speech)"
# What a run can learn from: words, or a clip the reviewer marked as holding no speech (its target is
# empty, Whisper's way of saying "nothing was said").
TEACHES = f"({HAS_TEXT} OR {IS_NO_SPEECH})"
# Nor one whose audio is known not to decode (the editor or a run found out and cached why), or
# to last longer than the 30 s Whisper hears at once (audio.WHISPER_WINDOW_S).
HAS_AUDIO = ("d.id NOT IN (SELECT item_id FROM s2s_app_audio_meta "
             "WHERE error IS NOT NULL OR duration_s > 30.0)")
# Reviewed items a run may use, for training or held out: the one definition the stats, the
# held-out split and the run's plan share, so "pending" is exactly what Train trains on.
# "IS NOT 1" so a NULL flag written by the assistant counts as not trained.
USABLE = f"d.is_reviewed = 1 AND d.is_trained IS NOT 1 AND {TEACHES} AND {HAS_AUDIO}"
# Reviewed, not trained, and kept out of every run: with the usable and the trained items, these
# account for every reviewed one (stats: reviewed = trained + pending + heldout + regression + unusable).
UNUSABLE = f"d.is_reviewed = 1 AND d.is_trained IS NOT 1 AND NOT ({TEACHES} AND {HAS_AUDIO})"
# Why, first reason first; the keys of stats' unusable_reasons and of the list's `unusable`.
UNUSABLE_REASON = (f"CASE WHEN NOT {TEACHES} AND d.transcript IS NOT NULL AND NOT ({IS_TEXT}) THEN 'not_text' "
                   f"WHEN NOT {TEACHES} THEN 'no_words' "
                   "WHEN d.audio_blob IS NULL OR length(d.audio_blob) = 0 THEN 'no_audio' "
                   "WHEN d.id IN (SELECT item_id FROM s2s_app_audio_meta WHERE error IS NOT NULL) THEN 'undecodable' "
                   "ELSE 'too_long' END")
NOT_MEASURED = "d.id NOT IN (SELECT item_id FROM s2s_app_audio_meta)"
# Held-out sets up to this many items have their words counted in the stats.
HELDOUT_WORDS_UP_TO = 200
IS_HELDOUT = "d.id IN (SELECT item_id FROM s2s_app_heldout)"
# Hashed into the held-out set: below the fraction's threshold, unless an imported dataset said "train".
HASHED_OUT = f"({HASH_SQL} < ? AND d.id NOT IN (SELECT item_id FROM s2s_app_train_split))"
# Usable, and neither a regression check nor already held out: what a run trains on, or holds out anew.
TRAINABLE = f"{USABLE} AND {NOT_REGRESSION} AND NOT {IS_HELDOUT}"
# Held out by an earlier run and still measurable.
KEPT_HELDOUT = f"{USABLE} AND {NOT_REGRESSION} AND {IS_HELDOUT}"
# What a run may rehearse: items a deployed model learned, with words and decodable audio.
LEARNED = (f"d.is_reviewed = 1 AND d.is_trained = 1 AND {TEACHES} AND {HAS_AUDIO} AND {NOT_REGRESSION} "
           f"AND NOT {IS_HELDOUT}")
# Regression checks measure forgetting, so only items no deployed model has learned count.
REGRESSION = f"{USABLE} AND {IS_REGRESSION}"


def has_text(transcript: str | None) -> bool:
    """Python's side of HAS_TEXT."""
    return bool((transcript or "").strip(BLANKS))


def heldout_threshold(fraction: float) -> int:
    return int(fraction * HASH_SPACE)


def unmeasured(conn: sqlite3.Connection, limit: int) -> list[int]:
    """Usable items whose audio was never measured: measured before they count as pending, since a clip
    without audio, or one too long, is only found out by reading it (utils/audio_facts.py)."""
    return [r[0] for r in conn.execute(f"SELECT d.id FROM {TABLE} d WHERE {USABLE} AND {NOT_MEASURED} LIMIT ?",
                                       (limit,))]


def stats(conn: sqlite3.Connection, heldout_fraction: float = 0.0, heldout_min: int = 0) -> dict[str, Any]:
    """Counts answered from the indexes; `pending_training` excludes held-out and regression
    items and those without words or with audio known not to decode, so it counts what the
    next run will train on.

    Separate count(*) queries beat one pass with sum(...) expressions where SQLite
    answers each from an index range (or the b-tree's own count) in C; the trainable
    items, whose test is dearer, are counted in one pass with their held-out share.
    """
    def count(where: str = "", *args: object) -> int:
        return conn.execute(f"SELECT count(*) FROM {TABLE} d {where}", args).fetchone()[0]

    total = count()
    reviewed = count("WHERE d.is_reviewed = 1")
    trained = count("WHERE d.is_trained = 1")
    kept = len(_kept_heldout(conn))
    candidates, hashed_out, unmeasured_count = conn.execute(
        f"SELECT count(*), coalesce(sum({HASHED_OUT}), 0), coalesce(sum({NOT_MEASURED}), 0) "
        f"FROM {TABLE} d WHERE {TRAINABLE}", (heldout_threshold(heldout_fraction),)).fetchone()
    # From the app's small table outwards, rather than testing every reviewed row against it.
    # (CROSS JOIN is how SQLite is told to keep that order.)
    regression = conn.execute(f"SELECT count(*) FROM s2s_app_regression r CROSS JOIN {TABLE} d "
                              f"ON d.id = r.item_id WHERE {USABLE}").fetchone()[0]
    # The next run's new held-out items follow from the counts without listing them (see heldout_ids).
    new_heldout = hashed_out + _top_up(heldout_min, kept + hashed_out, candidates - hashed_out)
    # Every reviewed, untrained item is usable (pending, held out or a check) or not: the count follows from
    # an index, and only when there are some does a pass ask each one why.
    unusable_count = count("WHERE d.is_reviewed = 1 AND d.is_trained IS NOT 1") - candidates - kept - regression
    unusable = dict(conn.execute(f"SELECT {UNUSABLE_REASON} AS reason, count(*) FROM {TABLE} d WHERE {UNUSABLE} "
                                 "GROUP BY reason ORDER BY reason").fetchall()) if unusable_count else {}
    return {
        "total": total,
        "reviewed": reviewed,
        "trained": trained,
        "pending_training": candidates - new_heldout,
        "heldout": kept + new_heldout,
        "regression": regression,
        "unreviewed": total - reviewed,
        "unusable": unusable_count,
        "unusable_reasons": unusable,
        # What the held-out WER rests on: under ~100 words one word moves it by a point or more. Counted
        # up to HELDOUT_WORDS_UP_TO items (null beyond: enough to tell, and listing them costs a scan).
        "heldout_words": _words(conn, heldout_ids(conn, heldout_fraction, heldout_min))
        if 0 < kept + new_heldout <= HELDOUT_WORDS_UP_TO else 0 if not kept + new_heldout else None,
        # Items counted as pending whose audio was never read: the stats view measures them first.
        "unmeasured": unmeasured_count,
    }


def _words(conn: sqlite3.Connection, ids: list[int]) -> int:
    """Words in the items' transcripts, split as the WER counts them (on whitespace)."""
    words = 0
    for start in range(0, len(ids), 500):  # SQLite's bound on a statement's variables
        chunk = ids[start:start + 500]
        rows = conn.execute(f"SELECT transcript FROM {TABLE} WHERE id IN ({','.join('?' * len(chunk))}) "
                            "AND typeof(transcript) = 'text'", chunk)
        words += sum(len(text.split()) for (text,) in rows)
    return words


def _kept_heldout(conn: sqlite3.Connection) -> list[int]:
    # From the app's small table outwards, as for the regression count.
    return [r[0] for r in conn.execute(f"SELECT d.id FROM s2s_app_heldout h CROSS JOIN {TABLE} d "
                                       f"ON d.id = h.item_id WHERE {KEPT_HELDOUT}")]


def _top_up(minimum: int, held: int, available: int) -> int:
    """How many more items the held-out set takes to reach its minimum."""
    return max(0, min(max(minimum, 0) - held, available))


def heldout_ids(conn: sqlite3.Connection, fraction: float, minimum: int) -> list[int]:
    """Reviewed, untrained items kept out of training to measure WER (regression items aside).

    Every item held out before stays held out. New items join when their id
    hashes below `fraction`, and the lowest hashes top the set up to `minimum`:
    stable as items arrive, and never an item already trained on. Call
    `keep_heldout` with the result when a run uses it, so it never moves.
    """
    kept = _kept_heldout(conn)
    if fraction <= 0 and minimum <= len(kept):
        return sorted(kept)
    rows = conn.execute(f"SELECT d.id, {HASHED_OUT} AS out FROM {TABLE} d WHERE {TRAINABLE} ORDER BY {HASH_SQL}",
                        (heldout_threshold(fraction),)).fetchall()
    hashed = [r[0] for r in rows if r[1]]
    chosen = set(hashed)
    rest = [r[0] for r in rows if r[0] not in chosen]
    top_up = rest[:_top_up(minimum, len(kept) + len(hashed), len(rest))]
    return sorted([*kept, *hashed, *top_up])


def keep_heldout(conn: sqlite3.Connection, ids: Iterable[int]) -> None:
    """Remember items as held out for good (inside the transaction that records the run)."""
    conn.executemany("INSERT OR IGNORE INTO s2s_app_heldout(item_id) VALUES (?)", [(i,) for i in ids])


def mark_role(conn: sqlite3.Connection, item_id: int, role: str | None) -> None:
    """Give an imported item the role its dataset gave it: held out, a regression check, or train split
    (or mark it as holding no speech)."""
    table = {"heldout": "s2s_app_heldout", "regression": "s2s_app_regression",
             "train": "s2s_app_train_split", "no_speech": "s2s_app_no_speech"}.get(role or "")
    if table:
        conn.execute(f"INSERT OR IGNORE INTO {table}(item_id) VALUES (?)", (item_id,))


def learned_ids(conn: sqlite3.Connection) -> list[int]:
    """Items the deployed model learned that a run may rehearse (see LEARNED)."""
    return [r[0] for r in conn.execute(f"SELECT d.id FROM {BY_LIST} WHERE {LEARNED} ORDER BY d.id")]


def trainable_ids(conn: sqlite3.Connection) -> list[int]:
    """Items a run would train on or hold out anew (see TRAINABLE), oldest first."""
    return [r[0] for r in conn.execute(f"SELECT d.id FROM {BY_LIST} WHERE {TRAINABLE} ORDER BY d.id")]


def trainable_texts(conn: sqlite3.Connection, limit: int = 2000) -> list[str]:
    """The transcripts of up to `limit` items a run would train on (the newest), for their style."""
    return [r[0] for r in conn.execute(f"SELECT d.transcript FROM {BY_LIST} WHERE {TRAINABLE} AND {HAS_TEXT} "
                                       "ORDER BY d.id DESC LIMIT ?", (limit,))]


def regression_ids(conn: sqlite3.Connection) -> list[int]:
    """The reviewer's regression checks a run measures (see REGRESSION), oldest first."""
    return [r[0] for r in conn.execute(f"SELECT d.id FROM {BY_LIST} WHERE {REGRESSION} ORDER BY d.id")]


# Reviewed, with words and audio not known to be unusable: what an export holds (trained or not).
EXPORTABLE = f"d.is_reviewed = 1 AND {TEACHES} AND {HAS_AUDIO}"


def fix_heldout(conn: sqlite3.Connection, fraction: float, minimum: int) -> None:
    """Make the next run's held-out choice permanent now, so a dataset exported today splits exactly as
    every later run here will (held-out items stay held out forever; see heldout_ids)."""
    keep_heldout(conn, heldout_ids(conn, fraction, minimum))


def exportable_rows(conn: sqlite3.Connection, untrained_only: bool = False) -> list[sqlite3.Row]:
    """(id, transcript, is_trained, role) of every item an export holds, oldest first; role is 'train',
    'heldout' or 'regression'. Call fix_heldout first so the roles are the ones runs use."""
    untrained = " AND d.is_trained IS NOT 1" if untrained_only else ""
    return conn.execute(
        f"SELECT d.id, d.transcript, CASE WHEN d.is_trained = 1 THEN 1 ELSE 0 END AS is_trained, "
        f"{IS_NO_SPEECH} AS no_speech, "
        f"CASE WHEN {IS_REGRESSION} THEN 'regression' WHEN {IS_HELDOUT} THEN 'heldout' ELSE 'train' END AS role "
        f"FROM {BY_LIST} WHERE {EXPORTABLE}{untrained} ORDER BY d.id").fetchall()


def unusable_audio(conn: sqlite3.Connection, untrained_only: bool = False) -> list[tuple[int, str]]:
    """Reviewed items with words left out for their audio (see HAS_AUDIO), and why, for an export's report."""
    untrained = " AND d.is_trained IS NOT 1" if untrained_only else ""
    return [(r[0], r[1] or f"it lasts {r[2]:.0f} s, longer than the 30 s Whisper hears") for r in conn.execute(
        f"SELECT d.id, m.error, m.duration_s FROM s2s_app_audio_meta m CROSS JOIN {TABLE} d ON d.id = m.item_id "
        f"WHERE d.is_reviewed = 1 AND {TEACHES} AND (m.error IS NOT NULL OR m.duration_s > 30.0){untrained} "
        "ORDER BY d.id")]
