"""Wall time per phase of a run: where a Train click's minutes go.

A run records these in its result (`phase_seconds`), `main.py train` prints
them and the dashboard shows them in the run's row, so a slow click can be
traced to its phase without a profiler.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

# In the order a run goes through them; the report lists them in this order.
PHASES = ("preparing", "converting", "loading", "encoding", "training", "validation", "blend", "saving", "exporting",
          "measuring before", "measuring after", "deploying")


class PhaseClock:
    """Seconds spent in each named phase; a phase entered twice (validation after each epoch) adds up."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(phase, time.perf_counter() - started)

    def add(self, phase: str, seconds: float) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds

    def rounded(self) -> dict[str, float]:
        return ordered(self.seconds)


def ordered(seconds: dict[str, float]) -> dict[str, float]:
    """The phases in run order (unknown names last), to a tenth of a second, as a result records them."""
    order = {name: i for i, name in enumerate(PHASES)}
    return {name: round(seconds[name], 1) for name in sorted(seconds, key=lambda n: order.get(n, len(PHASES)))}


def describe(phase_seconds: dict[str, float]) -> str:
    """One line for a person: "loading 2 s · encoding 31 s · training 80 s ..." (phases under 0.05 s left out)."""
    parts = [f"{name} {_fmt(seconds)}" for name, seconds in phase_seconds.items() if seconds >= 0.05]
    return " · ".join(parts)


def _fmt(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60)} s"
