"""Slowing down whoever guesses the access token: wrong tries per client address.

The first few wrong tokens cost nothing (a typo); after that each further try
must wait twice as long as the one before, up to a minute. Nothing sleeps:
a try that comes too early is answered 429 with Retry-After at once, so a
guesser cannot tie up the server's threads either.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

FREE_TRIES = 5
MAX_WAIT_S = 60.0
FORGET_AFTER_S = 15 * 60.0
MAX_CLIENTS = 10_000  # bounds memory however many addresses guess


class Throttle:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, tuple[int, float]] = {}  # client -> (wrong tries, time of the last)

    def wait(self, client: str) -> float:
        """Seconds this client must wait before its next try; 0 when it may try now."""
        with self._lock:
            count, last = self._failures.get(client, (0, 0.0))
        if count < FREE_TRIES:
            return 0.0
        return max(0.0, min(MAX_WAIT_S, 2.0 ** (count - FREE_TRIES)) - (self._clock() - last))

    def failed(self, client: str) -> None:
        now = self._clock()
        with self._lock:
            if len(self._failures) >= MAX_CLIENTS:
                self._forget(now)
            count, _ = self._failures.get(client, (0, 0.0))
            self._failures[client] = (count + 1, now)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)

    def _forget(self, now: float) -> None:
        stale = [c for c, (_, last) in self._failures.items() if now - last > FORGET_AFTER_S]
        for client in stale or sorted(self._failures, key=lambda c: self._failures[c][1])[: MAX_CLIENTS // 10]:
            del self._failures[client]
