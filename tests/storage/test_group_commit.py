"""Group commit: many small writes share one transaction, each is durable when it returns,
and a failing unit fails alone."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from amogate.storage import migrate
from amogate.storage.db import Database
from amogate.storage.tables import rate_counters


def _unit(n: int):  # type: ignore[no-untyped-def]
    async def write(conn: AsyncConnection) -> int:
        await conn.execute(insert(rate_counters).values(bucket=f"b{n}", window_start=0, count=n))
        return n

    return write


async def test_concurrent_units_share_commits_and_are_durable_on_return(
    database_url: str,
) -> None:
    db, reader = Database(database_url), Database(database_url)
    commits = 0

    @event.listens_for(db.engine.sync_engine, "commit")
    def _count(_conn: object) -> None:
        nonlocal commits
        commits += 1

    try:
        await migrate.upgrade(db)
        commits = 0

        async def one(n: int) -> int:
            result: int = await db.grouped(_unit(n))
            # Returned means committed: another connection already sees the row.
            async with reader.read() as conn:
                seen = (
                    await conn.execute(
                        select(rate_counters.c.count).where(rate_counters.c.bucket == f"b{n}")
                    )
                ).scalar_one()
            assert seen == n
            return result

        results = await asyncio.gather(*(one(n) for n in range(100)))
        assert results == list(range(100))
        assert commits < 50, f"{commits} commits for 100 units: no grouping"
    finally:
        await db.dispose()
        await reader.dispose()


async def test_a_failing_unit_fails_alone(database_url: str) -> None:
    db = Database(database_url)
    try:
        await migrate.upgrade(db)

        async def duplicate(conn: AsyncConnection) -> int:
            await conn.execute(insert(rate_counters).values(bucket="b1", window_start=0, count=9))
            return -1

        outcomes = await asyncio.gather(
            db.grouped(_unit(1)),
            db.grouped(duplicate),
            db.grouped(_unit(2)),
            return_exceptions=True,
        )
        assert outcomes[0] == 1
        assert isinstance(outcomes[1], Exception)
        assert outcomes[2] == 2
        async with db.read() as conn:
            total = (await conn.execute(select(func.count()).select_from(rate_counters))).scalar()
        assert total == 2
    finally:
        await db.dispose()


async def test_a_unit_error_reaches_its_caller() -> None:
    db = Database("sqlite://")  # in memory: no schema needed for this unit

    async def broken(conn: AsyncConnection) -> None:
        raise ValueError("bad unit")

    try:
        with pytest.raises(ValueError, match="bad unit"):
            await db.grouped(broken)
    finally:
        await db.dispose()


async def test_grouped_rows_go_in_multi_row_statements_and_a_bad_row_fails_alone(
    database_url: str,
) -> None:
    db = Database(database_url)
    statements = 0

    @event.listens_for(db.engine.sync_engine, "before_cursor_execute")
    def _count(_c: object, _cur: object, statement: str, *_args: object) -> None:
        nonlocal statements
        if statement.lstrip().upper().startswith("INSERT INTO RATE_COUNTERS"):
            statements += 1

    try:
        await migrate.upgrade(db)
        await db.grouped(_unit(0))  # b0 exists: inserting it again must fail, alone
        statements = 0
        rows = [{"bucket": f"b{n}", "window_start": 0, "count": n} for n in range(60)]
        outcomes = await asyncio.gather(
            *(db.grouped_insert(rate_counters, row) for row in rows), return_exceptions=True
        )
        assert isinstance(outcomes[0], Exception)  # the duplicate of b0
        assert outcomes[1:] == [None] * 59
        async with db.read() as conn:
            total = (await conn.execute(select(func.count()).select_from(rate_counters))).scalar()
        assert total == 60
        # One multi-row attempt (rolled back by the duplicate), then one insert per row.
        assert statements <= 61
    finally:
        await db.dispose()


async def test_grouped_rows_without_conflict_share_one_statement(database_url: str) -> None:
    db = Database(database_url)
    inserts = 0

    @event.listens_for(db.engine.sync_engine, "before_cursor_execute")
    def _count(_c: object, _cur: object, statement: str, *_args: object) -> None:
        nonlocal inserts
        if statement.lstrip().upper().startswith("INSERT INTO RATE_COUNTERS"):
            inserts += 1

    try:
        await migrate.upgrade(db)
        rows = [{"bucket": f"r{n}", "window_start": 0, "count": n} for n in range(100)]
        await asyncio.gather(*(db.grouped_insert(rate_counters, row) for row in rows))
        async with db.read() as conn:
            total = (await conn.execute(select(func.count()).select_from(rate_counters))).scalar()
        assert total == 100
        assert inserts < 20, f"{inserts} INSERT statements for 100 rows"
    finally:
        await db.dispose()
