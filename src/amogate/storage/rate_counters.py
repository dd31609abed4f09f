"""Fixed-window counters shared by every instance using the same database.

One row per (bucket, window start). A hit is a single atomic upsert that returns the new count
(`INSERT ... ON CONFLICT DO UPDATE ... RETURNING`, on SQLite >= 3.35 as on PostgreSQL), so two
instances counting at the same moment can never both see the same number.
"""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from amogate.storage.tables import rate_counters


async def hit(conn: AsyncConnection, bucket: str, window_start: int) -> int:
    """Count one event in `bucket` for the window starting at `window_start`; the new count.
    Call inside a write transaction."""
    dialect_insert = sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert
    upsert = dialect_insert(rate_counters).values(bucket=bucket, window_start=window_start, count=1)
    stmt = upsert.on_conflict_do_update(
        index_elements=[rate_counters.c.bucket, rate_counters.c.window_start],
        set_={"count": rate_counters.c.count + 1},
    ).returning(rate_counters.c.count)
    count = (await conn.execute(stmt)).scalar_one()
    if count == 1:
        # First hit of a new window: the bucket's older windows are of no further use.
        await conn.execute(
            delete(rate_counters).where(
                rate_counters.c.bucket == bucket, rate_counters.c.window_start < window_start
            )
        )
    return int(count)


async def current(conn: AsyncConnection, bucket: str, window_start: int) -> int:
    """The count of `bucket` in the window starting at `window_start` (0 when none)."""
    value = (
        await conn.execute(
            select(rate_counters.c.count).where(
                rate_counters.c.bucket == bucket, rate_counters.c.window_start == window_start
            )
        )
    ).scalar()
    return int(value or 0)


async def refund(conn: AsyncConnection, bucket: str, window_start: int) -> None:
    """Take back one hit (an attempt that turned out not to count)."""
    await conn.execute(
        update(rate_counters)
        .where(
            rate_counters.c.bucket == bucket,
            rate_counters.c.window_start == window_start,
            rate_counters.c.count > 0,
        )
        .values(count=rate_counters.c.count - 1)
    )


async def purge_before(conn: AsyncConnection, window_start: int, *, prefix: str = "") -> int:
    """Delete the windows older than `window_start` (of buckets starting with `prefix`)."""
    statement = delete(rate_counters).where(rate_counters.c.window_start < window_start)
    if prefix:
        statement = statement.where(rate_counters.c.bucket.startswith(prefix, autoescape=True))
    result = await conn.execute(statement)
    return int(result.rowcount)
