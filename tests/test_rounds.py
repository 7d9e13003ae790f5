"""Across training rounds: held-out items stay held out whatever the counts become, and every run
rehearses items earlier runs learned. The data layer and the run planner, without training."""
from __future__ import annotations

import random

import pytest

from stt.runs import jobs
from tests import tiny_whisper
from utils import database, runs, training_sets


def _review(conn, count: int, audio: bytes) -> list[int]:
    return [database.insert_item(conn, f"sentence number {i}", audio, is_reviewed=1) for i in range(count)]


def _train_planned(conn, cfg) -> jobs.Plan:
    """Start a run and mark its items trained, as a deployed run does."""
    job_id = jobs.start_record(cfg)["job_id"]
    planned = runs.planned_items(conn, job_id)
    conn.execute("BEGIN IMMEDIATE")
    runs.record_items(conn, job_id, [(i, "train", f"sentence number {n}") for n, i in enumerate(planned["train"])])
    conn.executemany(f"UPDATE {database.TABLE} SET is_trained = 1 WHERE id = ?", [(i,) for i in planned["train"]])
    runs.finish(conn, job_id, "done", "Deployed.", deployed=1)
    conn.execute("COMMIT")
    return jobs.Plan(planned["train"], planned["heldout"], planned["regression"], planned["rehearsal"])


@pytest.fixture
def audio(speech, cfg) -> bytes:
    tiny_whisper.build(cfg.model.path)  # a run is only recorded with a model to train
    return speech["hello"]


def test_held_out_items_stay_held_out_over_growing_data(conn, cfg, audio):
    cfg.training.heldout_fraction, cfg.training.heldout_min = 0.1, 3
    ever_held: set[int] = set()
    ever_trained: set[int] = set()
    rng = random.Random(1)
    for _round in range(6):
        _review(conn, rng.randint(5, 25), audio)
        stats = training_sets.stats(conn, cfg.training.heldout_fraction, cfg.training.heldout_min)
        planned = _train_planned(conn, cfg)
        # The counts the dashboard shows are exactly what the run used.
        assert stats["pending_training"] == len(planned.train) and stats["heldout"] == len(planned.heldout)
        assert ever_held <= set(planned.heldout), "an item held out once is held out in every later run"
        assert not set(planned.train) & ever_held and not set(planned.heldout) & ever_trained
        ever_held |= set(planned.heldout)
        ever_trained |= set(planned.train)
    assert len(ever_held) >= 3


def test_minimum_top_up_does_not_release_items_when_more_hash_in(conn, cfg, audio):
    """Issue 9's item 10: held out by the minimum in run 1, trained in run 4 once others hashed in."""
    cfg.training.heldout_fraction, cfg.training.heldout_min = 0.1, 3
    _review(conn, 4, audio)
    first = _train_planned(conn, cfg)
    _review(conn, 80, audio)
    later = _train_planned(conn, cfg)
    assert set(first.heldout) <= set(later.heldout) and not set(first.heldout) & set(later.train)


def test_each_run_rehearses_two_learned_items_per_new_one(conn, cfg, audio):
    cfg.training.heldout_fraction, cfg.training.heldout_min = 0.0, 0
    _review(conn, 10, audio)
    first = _train_planned(conn, cfg)
    assert first.rehearsal == []
    _review(conn, 4, audio)
    second = _train_planned(conn, cfg)
    assert len(second.train) == 4 and len(second.rehearsal) == 8 and set(second.rehearsal) <= set(first.train)
    _review(conn, 20, audio)
    assert len(jobs.plan(conn, cfg).rehearsal) == 14  # no more than were learned
    # Capped by the config, and off at 0.
    cfg.training.rehearsal_max = 2
    assert len(jobs.plan(conn, cfg).rehearsal) == 2
    cfg.training.rehearsal_max = 0
    assert jobs.plan(conn, cfg).rehearsal == []


def test_regression_checks_and_held_out_items_are_never_rehearsed(conn, cfg, audio):
    cfg.training.heldout_fraction, cfg.training.heldout_min = 0.0, 2
    ids = _review(conn, 8, audio)
    first = _train_planned(conn, cfg)
    conn.execute("INSERT INTO s2s_app_regression(item_id) VALUES (?)", (first.train[0],))
    _review(conn, 20, audio)
    rehearsal = set(jobs.plan(conn, cfg).rehearsal)
    assert first.train[0] not in rehearsal and not rehearsal & set(first.heldout)
    assert rehearsal <= set(ids)
