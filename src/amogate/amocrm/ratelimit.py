"""Outbound request budget for one amoCRM account.

amoCRM allows about 7 requests/s; going over gives 429, and repeated 429s get the account
blocked (403 on everything, lifted only by support). So every call first takes a slot from an
``OutboundLimiter``; a 429 pauses all calls, a 403 stops them for a long cool-down.

``TokenBucketLimiter`` does this inside one process. A limiter shared by several processes
implements the same Protocol elsewhere.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from amogate.amocrm.errors import AmoBlockedError, AmoRateLimitedError

_SLACK_S = 1e-9  # rounding in the sum of intervals is not worth a sleep


class OutboundLimiter(Protocol):
    async def acquire(self) -> None:
        """Wait for a slot; raises ``AmoBlockedError`` during a 403 cool-down."""
        ...

    async def report_rate_limited(self, retry_after: float | None) -> None: ...

    async def report_blocked(self) -> None: ...


class NoLimiter:
    async def acquire(self) -> None:
        return None

    async def report_rate_limited(self, retry_after: float | None) -> None:
        return None

    async def report_blocked(self) -> None:
        return None


class TokenBucketLimiter:
    """At most ``rate_per_s`` calls per second with bursts of ``burst`` (default 1: even spacing).

    After a 429 every caller waits ``retry_after`` (when amoCRM says) or a pause that starts at
    ``pause_s`` and doubles for each 429 that follows within ``streak_window_s`` of the previous
    pause's end, up to ``max_pause_s``. After a 403, ``acquire`` raises ``AmoBlockedError`` for
    ``block_cooldown_s``. With ``max_wait_s`` set, ``acquire`` raises ``AmoRateLimitedError``
    instead of waiting out a longer pause, so a worker can reschedule rather than sit idle.

    The bucket is kept as a "theoretical arrival time" (GCRA): each call moves it one interval
    on, and a call may go once the clock is within the burst tolerance of it.
    """

    def __init__(
        self,
        rate_per_s: float,
        burst: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        pause_s: float = 2.0,
        max_pause_s: float = 60.0,
        streak_window_s: float = 60.0,
        block_cooldown_s: float = 600.0,
        max_wait_s: float | None = None,
    ) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        burst = 1 if burst is None else burst
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self._interval = 1.0 / rate_per_s
        self._tolerance = (burst - 1) * self._interval
        self._clock = clock
        self._sleep = sleep
        self._pause_s = pause_s
        self._max_pause_s = max_pause_s
        self._streak_window_s = streak_window_s
        self._block_cooldown_s = block_cooldown_s
        self._max_wait_s = max_wait_s
        self._tat = float("-inf")
        self._paused_until = float("-inf")
        self._blocked_until = float("-inf")
        self._streak = 0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:  # FIFO: callers get slots in arrival order
            # After sleeping until T, treat the time as at least T even if the clock, through
            # rounding, reads a hair earlier; otherwise tiny re-sleeps could loop forever.
            floor = float("-inf")
            while True:
                now = max(self._clock(), floor)
                if now < self._blocked_until:
                    remaining = self._blocked_until - now
                    raise AmoBlockedError(
                        f"calls paused for {remaining:.0f} s after a 403", blocked_for=remaining
                    )
                if now < self._paused_until:
                    wait = self._paused_until - now
                    if self._max_wait_s is not None and wait > self._max_wait_s:
                        raise AmoRateLimitedError(
                            f"calls paused for {wait:.1f} s after a 429",
                            retry_after=wait,
                            maybe_applied=False,
                        )
                    await self._sleep(wait)
                    floor = self._paused_until
                    continue
                tat = max(self._tat, now)
                allowed_at = tat - self._tolerance
                if allowed_at - now > _SLACK_S:
                    await self._sleep(allowed_at - now)
                    floor = allowed_at
                    continue
                self._tat = tat + self._interval
                return

    async def report_rate_limited(self, retry_after: float | None) -> None:
        now = self._clock()
        if now < self._paused_until:
            # Other calls sent before the pause began are answering 429 too: not a new streak.
            if retry_after is not None:
                self._paused_until = max(self._paused_until, now + retry_after)
            return
        if now - self._paused_until <= self._streak_window_s:
            self._streak += 1
        else:
            self._streak = 0
        if retry_after is not None:
            pause = max(0.0, retry_after)
        else:
            pause = min(self._pause_s * 2**self._streak, self._max_pause_s)
        self._paused_until = now + pause
        self._tat = max(self._tat, self._paused_until)  # no burst right after the pause

    async def report_blocked(self) -> None:
        self._blocked_until = self._clock() + self._block_cooldown_s
