"""Sign-in attempt limits on SQLite and PostgreSQL: per address (IPv6 by /64), a global cap,
bounded rows, and a successful sign-in taken back."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from amogate.access import login_limit
from amogate.storage import migrate
from amogate.storage.db import Database
from amogate.storage.tables import rate_counters

NOW = 1_800_000_010.0


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await migrate.upgrade(database)
    try:
        yield database
    finally:
        await database.dispose()


async def _attempt(db: Database, host: str, now: float = NOW) -> login_limit.Attempt:
    async with db.transaction() as conn:
        return await login_limit.begin(conn, host, now)


async def _rows(db: Database) -> int:
    async with db.read() as conn:
        return int(
            (await conn.execute(select(func.count()).select_from(rate_counters))).scalar_one()
        )


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("not-an-address", "unknown"),
        (None, "unknown"),
    ],
)
def test_addresses_are_counted_by_ipv4_address_or_ipv6_64(host: str | None, key: str) -> None:
    assert login_limit.client_key(host) == key


async def test_one_ipv6_64_shares_one_limit(db: Database) -> None:
    for i in range(login_limit.PER_ADDRESS):
        assert not (await _attempt(db, f"2001:db8:0:7::{i + 1:x}")).refused
    refused = await _attempt(db, "2001:db8:0:7:ffff::9")
    assert refused.refused
    assert 1 <= refused.wait <= login_limit.WINDOW_S
    assert not (await _attempt(db, "2001:db8:0:8::1")).refused


async def test_the_global_cap_holds_across_addresses_and_writes_nothing_past_it(
    db: Database,
) -> None:
    for i in range(login_limit.GLOBAL):
        assert not (await _attempt(db, f"198.51.100.{i + 1}")).refused
    rows = await _rows(db)
    for i in range(200):
        assert (await _attempt(db, f"203.0.113.{i % 250 + 1}")).refused
    assert await _rows(db) == rows  # an attacker with many addresses cannot fill the table
    assert rows == login_limit.GLOBAL + 1


async def test_one_address_cannot_use_up_the_global_cap(db: Database) -> None:
    for _ in range(login_limit.GLOBAL * 2):
        await _attempt(db, "198.51.100.1")
    assert not (await _attempt(db, "198.51.100.2")).refused


async def test_a_new_minute_forgets_the_earlier_minutes_rows(db: Database) -> None:
    for i in range(10):
        await _attempt(db, f"198.51.100.{i + 1}")
    assert await _rows(db) == 11
    await _attempt(db, "198.51.100.1", now=NOW + login_limit.WINDOW_S)
    assert await _rows(db) == 2


async def test_a_forgiven_attempt_does_not_count(db: Database) -> None:
    for _ in range(login_limit.PER_ADDRESS * 3):
        attempt = await _attempt(db, "198.51.100.1")
        assert not attempt.refused
        async with db.transaction() as conn:
            await login_limit.forgive(conn, attempt)
