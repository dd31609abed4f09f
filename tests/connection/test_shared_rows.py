"""The budget row and the account row are created on first use by whichever process gets
there first; processes arriving together must not fail on each other's insert."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from amogate.connection.limiter import JITTER_S, LATE_S, DatabaseLimiter
from amogate.storage import accounts, budget, migrate
from amogate.storage.db import Database
from tests.amocrm.helpers import FakeTime


@pytest.fixture
async def databases(database_url: str) -> AsyncIterator[list[Database]]:
    """Four engines on one database, like four processes."""
    first = Database(database_url)
    await migrate.upgrade(first)
    engines = [first, *(Database(database_url) for _ in range(3))]
    try:
        yield engines
    finally:
        for db in engines:
            await db.dispose()


async def test_processes_taking_their_first_slots_together_all_get_one(
    databases: list[Database],
) -> None:
    rate = 5.0
    now = time.time()

    async def take(db: Database) -> budget.Slot:
        async with db.transaction() as conn:
            return await budget.take(conn, "default", rate=rate, now=now)

    slots = await asyncio.gather(*(take(db) for db in databases * 2))

    waits = sorted(slot.wait for slot in slots)
    assert waits == pytest.approx([n / rate for n in range(len(slots))])


async def test_processes_locking_a_new_account_together_share_one_row(
    databases: list[Database],
) -> None:
    now = datetime.now(UTC)

    async def lock(db: Database) -> accounts.AccountRow:
        async with db.transaction() as conn:
            return await accounts.lock(conn, "new-account", now)

    rows = await asyncio.gather(*(lock(db) for db in databases))

    assert {row.account_key for row in rows} == {"new-account"}
    assert {row.state for row in rows} == {accounts.NOT_AUTHORIZED}


async def test_a_caller_whose_clock_was_read_before_the_lock_never_moves_the_budget_back(
    databases: list[Database],
) -> None:
    """A process reads its clock, then waits for the row's lock while another takes a slot a
    moment later. Storing the earlier time would refill the next caller twice over that
    moment, and slots would land closer than 1/rate (seen as 6 calls in one second at 5/s)."""
    rate = 5.0
    start = time.time()
    db = databases[0]

    async def take(now: float) -> budget.Slot:
        async with db.transaction() as conn:
            return await budget.take(conn, "default", rate=rate, now=now)

    await take(start)  # the first slot: the bucket is now empty
    later = await take(start + 0.1)  # another process, its clock read 0.1 s later
    earlier = await take(start + 0.05)  # clock read before the lock, committed after
    nxt = await take(start + 0.1)
    # Slots at start, +0.2, +0.4, +0.6: each caller waits until its own slot.
    assert later.wait == pytest.approx(0.1)
    assert earlier.wait == pytest.approx(0.35)
    assert nxt.wait == pytest.approx(0.5)


class LateSleeper(FakeTime):
    """A clock whose sleeps overrun by `overrun` seconds the first `late_sleeps` times (an
    event loop held back on a loaded machine), then wake on time."""

    def __init__(self, start: float, *, overrun: float, late_sleeps: int) -> None:
        super().__init__(start)
        self.overrun = overrun
        self.late_sleeps = late_sleeps

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        if self.late_sleeps > 0:
            self.late_sleeps -= 1
            self.now += self.overrun


@pytest.mark.parametrize("overrun", [0.0, 0.03, 0.2, 0.5])
async def test_a_request_sent_after_waking_late_still_leaves_the_next_slot_its_spacing(
    databases: list[Database], overrun: float
) -> None:
    """A caller that wakes 200 ms after its slot and sends at once lands right before the next
    slot's request (seen as budget + 1 calls in one second with two processes on a loaded
    machine). Waking late, it lets the slot go and takes a new one."""
    interval = 0.2
    rate = (1 + JITTER_S) / interval
    time_ = LateSleeper(time.time(), overrun=overrun, late_sleeps=1)
    limiter = DatabaseLimiter(databases[0], rate, clock=time_.clock, sleep=time_.sleep)

    await limiter.acquire()  # the bucket's one token: no wait
    await limiter.acquire()  # waits one interval and wakes `overrun` late
    sent_at = time_.now
    async with databases[1].transaction() as conn:  # another process, on time
        nxt = await budget.take(conn, "default", rate=limiter.rate, now=sent_at)

    assert nxt.wait >= interval - LATE_S
