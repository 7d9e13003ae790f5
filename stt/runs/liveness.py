"""Whether a training worker of a model is alive, told by something the database lock cannot block.

The worker's heartbeat is a row in the shared SQLite file, and the assistant may hold that file's write
lock for as long as it likes: a beat it blocks for a minute made a live run look dead, and a second run
start beside it. So each worker also holds an operating-system lock on a file beside the model for its
whole life (`<model>.run.lock`). The system releases it when the process ends however it ends (a crash,
a kill, a power cut), so "the lock is held" is "a worker of this model is alive", whoever started it:
this server, a previous one, or `main.py train` in a terminal. filelock does the locking the same way
on Windows (msvcrt) and elsewhere (flock).
"""
from __future__ import annotations

from pathlib import Path

from filelock import FileLock, Timeout


class WorkerRunning(RuntimeError):
    """Another worker of the same model holds its lock."""


def lock_path(model_path: Path) -> Path:
    return model_path.with_name(f"{model_path.name}.run.lock")


def hold(model_path: Path) -> FileLock:
    """Take the model's worker lock for this process (release it, or let the process end, to free it);
    WorkerRunning when another worker holds it. Where nothing can be written beside the model the run
    goes on unlocked: the run's own checks say why it cannot save, and liveness falls back to the heartbeat."""
    lock = FileLock(lock_path(model_path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise WorkerRunning(f"Another training run of the model at {model_path} is still going "
                            "(its process is alive).") from None
    except OSError:
        pass
    return lock


def worker_alive(model_path: Path) -> bool | None:
    """True while a worker of this model holds its lock, False when none does, None when it cannot be
    told (the lock file cannot be opened): then the heartbeat is the only sign."""
    probe = FileLock(lock_path(model_path), timeout=0)
    try:
        probe.acquire()
    except Timeout:
        return True
    except OSError:
        return None
    probe.release()
    return False
