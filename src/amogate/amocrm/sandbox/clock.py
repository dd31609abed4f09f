"""The sandbox's sense of time: wall time by default, a hand-moved clock in tests."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]


def system_clock() -> float:
    """Unix time in seconds, what amoCRM stamps on tokens and entities."""
    return time.time()


class ManualClock:
    """A clock tests move by hand, so code expiry and the per-second budget need no sleeping."""

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self.value = start

    def __call__(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds
