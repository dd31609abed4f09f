"""The budget row and the account row are created on first use by whichever process gets
there first; processes arriving together must not fail on each other's insert."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from amogate.storage import accounts, budget, migrate
from amogate.storage.db import Database


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
