"""`OutboundLimiter` backed by the shared budget row (see storage/budget.py).

Every process that uses the same database draws from one bucket, so amoCRM never sees more
than AMO_RATE_LIMIT requests per second from all gateway instances and workers together.
Slots are spaced `(1 + JITTER_S) / rate` apart rather than `1 / rate`: a busy event loop, a
slow database commit or the network can hold one request back by tens of milliseconds while
the next leaves on time, and amoCRM counts arrivals in any rolling second. With this spacing,
rate + 1 requests can only land within one second if one of them was held back by more than
JITTER_S. The price is ~9% of the allowance (7/s → 6.4/s).

A slot is only good close to its time: a caller that wakes more than LATE_S after it (a loaded
machine can hold a process's event loop back by 200 ms) would send right before the next
slot's request, so it lets the slot go and takes a new one. The wasted slot costs throughput,
never the budget.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog

from amogate.amocrm.errors import AmoBlockedError, AmoRateLimitedError
from amogate.storage import budget
from amogate.storage.db import Database

log = structlog.get_logger("amogate.budget")

JITTER_S = 0.1
LATE_S = JITTER_S / 2


class DatabaseLimiter:
    def __init__(
        self,
        database: Database,
        rate_per_s: float,
        *,
        account_key: str = "default",
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        base_pause_s: float = 2.0,
        max_pause_s: float = 300.0,
        block_cooldown_s: float = 600.0,
        max_wait_s: float | None = None,
    ) -> None:
        self.database = database
        self.rate = rate_per_s / (1 + JITTER_S)
        self.account_key = account_key
        self.clock = clock
        self.sleep = sleep
        self.base_pause_s = base_pause_s
        self.max_pause_s = max_pause_s
        self.block_cooldown_s = block_cooldown_s
        self.max_wait_s = max_wait_s

    def with_max_wait(self, max_wait_s: float | None) -> DatabaseLimiter:
        """The same shared budget, but refusing to wait longer than `max_wait_s` for a pause
        (the delivery worker prefers to reschedule over sleeping)."""
        clone = DatabaseLimiter.__new__(DatabaseLimiter)
        clone.__dict__.update(self.__dict__)
        clone.max_wait_s = max_wait_s
        return clone

    async def acquire(self) -> None:
        while True:
            async with self.database.transaction() as conn:
                asked = self.clock()
                slot = await budget.take(conn, self.account_key, rate=self.rate, now=asked)
            if slot.blocked_for > 0:
                raise AmoBlockedError(
                    f"calls to amoCRM paused for {slot.blocked_for:.0f} s after a 403",
                    blocked_for=slot.blocked_for,
                )
            if slot.paused_for > 0:
                if self.max_wait_s is not None and slot.paused_for > self.max_wait_s:
                    raise AmoRateLimitedError(
                        f"calls to amoCRM paused for {slot.paused_for:.1f} s after a 429",
                        retry_after=slot.paused_for,
                        maybe_applied=False,
                    )
                await self.sleep(slot.paused_for)
                continue
            if slot.wait > 0:
                await self.sleep(slot.wait)
            late = self.clock() - (asked + slot.wait)
            if late > LATE_S:
                log.debug("amocrm.slot_missed", late_s=round(late, 3))
                continue
            return

    async def report_rate_limited(self, retry_after: float | None) -> None:
        async with self.database.transaction() as conn:
            pause = await budget.record_rate_limited(
                conn,
                self.account_key,
                rate=self.rate,
                now=self.clock(),
                retry_after=retry_after,
                base_pause=self.base_pause_s,
                max_pause=self.max_pause_s,
            )
        log.warning("amocrm.rate_limited", pause_s=round(pause, 2), retry_after=retry_after)

    async def report_blocked(self) -> None:
        async with self.database.transaction() as conn:
            await budget.record_blocked(
                conn,
                self.account_key,
                rate=self.rate,
                now=self.clock(),
                cooldown=self.block_cooldown_s,
            )
        log.error("amocrm.blocked", cooldown_s=self.block_cooldown_s)

    async def state(self) -> budget.BudgetState | None:
        async with self.database.read() as conn:
            return await budget.read(conn, self.account_key)
