"""amoCRM's request budget: at most `rate_limit` requests per rolling second per token.

Emulated (amocrm-api.md §2.1): past the limit → 429 problem JSON with `retry_after`, and no
`Retry-After` header (amoCRM users report none; ISS-526). Assumptions: the budget is counted
per bearer token (per client id on `/oauth2/*`, per client address without either); only
admitted requests fill the window, so a client that pauses for a second recovers; `retry_after`
is the seconds until the window frees (Kommo's docs show 300, which would only slow tests).
Optional block mode (`block_after_s` > 0): that many consecutive seconds with 429s block the
whole account for `block_duration_s`, answering 403 HTML to everything, like amoCRM's ban.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from enum import Enum

from amogate.amocrm.sandbox.clock import Clock

WINDOW_S = 1.0


class Verdict(Enum):
    OK = "ok"
    LIMITED = "limited"
    BLOCKED = "blocked"


@dataclass
class Budget:
    clock: Clock
    rate_limit: int
    block_after_s: int = 0
    block_duration_s: int = 60
    admitted: dict[str, deque[float]] = field(default_factory=dict)
    seen: dict[str, deque[float]] = field(default_factory=dict)
    max_per_second: dict[str, int] = field(default_factory=dict)
    limited: int = 0
    blocked_until: float | None = None
    _streak: int = 0
    _last_violation_second: int | None = None

    def clear(self) -> None:
        self.admitted.clear()
        self.seen.clear()
        self.max_per_second.clear()
        self.limited = 0
        self.blocked_until = None
        self._streak = 0
        self._last_violation_second = None

    def observe(self, key: str) -> None:
        """Count a request that reached the server, whatever happens to it next."""
        window = _slide(self.seen.setdefault(key, deque()), self.clock())
        window.append(self.clock())
        self.max_per_second[key] = max(self.max_per_second.get(key, 0), len(window))

    def check(self, key: str) -> Verdict:
        now = self.clock()
        if self.blocked_until is not None:
            if now < self.blocked_until:
                return Verdict.BLOCKED
            self.blocked_until = None
        if self.rate_limit <= 0:
            return Verdict.OK
        window = _slide(self.admitted.setdefault(key, deque()), now)
        if len(window) < self.rate_limit:
            window.append(now)
            return Verdict.OK
        self.limited += 1
        self._note_violation(now)
        return Verdict.LIMITED

    def retry_after(self, key: str) -> int:
        """Whole seconds until `key` may send again (at least 1)."""
        window = self.admitted.get(key)
        if not window:
            return 1
        return max(1, math.ceil(window[0] + WINDOW_S - self.clock()))

    def _note_violation(self, now: float) -> None:
        if self.block_after_s <= 0:
            return
        second = int(now)
        if second == self._last_violation_second:
            return
        last = self._last_violation_second
        self._streak = self._streak + 1 if last is not None and second == last + 1 else 1
        self._last_violation_second = second
        if self._streak >= self.block_after_s:
            self.blocked_until = now + self.block_duration_s


def _slide(window: deque[float], now: float) -> deque[float]:
    while window and window[0] <= now - WINDOW_S:
        window.popleft()
    return window
