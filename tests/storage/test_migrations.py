"""Migrations and transactions on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, insert, inspect, select, update

from amogate.storage import migrate
from amogate.storage.db import Database
from amogate.storage.tables import metadata, oauth_states, rate_counters


async def test_upgrade_creates_every_table_and_is_repeatable(database_url: str) -> None:
    db = Database(database_url)
    try:
        await migrate.upgrade(db)
        await migrate.upgrade(db)  # a second start must be a no-op
        async with db.read() as conn:
            names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert set(metadata.tables) <= names
        assert await migrate.is_up_to_date(db)
    finally:
        await db.dispose()


async def test_migrated_schema_matches_the_table_definitions(database_url: str) -> None:
    db = Database(database_url)
    try:
        await migrate.upgrade(db)

        def diff(conn: Connection) -> list[object]:
            return list(compare_metadata(MigrationContext.configure(conn), metadata))

        async with db.read() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await db.dispose()


async def test_datetimes_come_back_aware_and_in_utc(database_url: str) -> None:
    db = Database(database_url)
    try:
        await migrate.upgrade(db)
        tashkent = datetime(2026, 5, 1, 15, 0, tzinfo=UTC) + timedelta(hours=5)
        async with db.transaction() as conn:
            await conn.execute(
                insert(oauth_states).values(
                    state="s1", created_at=tashkent, expires_at=tashkent + timedelta(minutes=15)
                )
            )
        async with db.read() as conn:
            row = (await conn.execute(select(oauth_states))).one()
        assert row.created_at == tashkent
        assert row.created_at.tzinfo is not None
        assert row.expires_at - row.created_at == timedelta(minutes=15)
    finally:
        await db.dispose()


async def test_concurrent_read_modify_write_transactions_lose_no_update(database_url: str) -> None:
    """Two engines (as two processes would) increment one row under the write lock."""
    first, second = Database(database_url), Database(database_url)
    try:
        await migrate.upgrade(first)
        async with first.transaction() as conn:
            await conn.execute(insert(rate_counters).values(bucket="b", window_start=0, count=0))

        async def bump(db: Database, times: int) -> None:
            for _ in range(times):
                async with db.transaction() as conn:
                    current = (
                        await conn.execute(
                            select(rate_counters.c.count)
                            .where(rate_counters.c.bucket == "b")
                            .with_for_update()
                        )
                    ).scalar_one()
                    await asyncio.sleep(0)  # let the other writer try to interleave
                    await conn.execute(
                        update(rate_counters)
                        .where(rate_counters.c.bucket == "b")
                        .values(count=current + 1)
                    )

        await asyncio.gather(bump(first, 25), bump(second, 25))
        async with first.read() as conn:
            total = (await conn.execute(select(rate_counters.c.count))).scalar_one()
        assert total == 50
    finally:
        await first.dispose()
        await second.dispose()
