"""One change of the deployed model and its trained flags at a time, across processes.

The trained flags (`is_trained`) say what the deployed model has learned, which the model's lineage
tells (stt/models/store.py). Whatever changes either (a run's swap and its record, a rollback, the
undo of a find-and-replace) holds this lock from reading the lineage to writing the flags. A
threading lock did not do: an undo read the lineage, waited 2 s on the assistant's database lock
while a rollback swapped the model, then wrote the flags of the model that had gone. The lock is a
file beside the model (`<model>.deploy.lock`), so the worker process, the server and `main.py` share it.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

# Longer than any swap and its record take, even when the assistant holds the database lock for a while.
WAIT_S = 120.0


class DeployBusy(RuntimeError):
    """Another change of the deployed model did not finish within WAIT_S."""


@contextmanager
def held(model_path: Path, wait_s: float = WAIT_S) -> Iterator[None]:
    """Hold the lock for the block; where nothing can be written beside the model, no model can be swapped
    there either, so the block runs unlocked."""
    lock = FileLock(model_path.with_name(f"{model_path.name}.deploy.lock"), timeout=wait_s)
    try:
        lock.acquire()
    except Timeout:
        raise DeployBusy(f"Another change of the model at {model_path} (a deploy, rollback or undo) did not "
                         f"finish within {wait_s:.0f} s; try again.") from None
    except OSError:
        yield
        return
    try:
        yield
    finally:
        lock.release()
