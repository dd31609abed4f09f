"""Rows a worker holds under a lease (lead deliveries, relay deliveries).

A worker changes only the rows it still holds: once its lease ran out, another worker may have
claimed them. Every such change goes through `change`; `finish` also ends the lease.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, update
from sqlalchemy.ext.asyncio import AsyncConnection


async def change(
    conn: AsyncConnection, table: Table, row_id: str, *, owner: str, **values: Any
) -> bool:
    """Set `values` on the row if `owner` still holds it; whether it did."""
    statement = (
        update(table).where(table.c.id == row_id, table.c.lease_owner == owner).values(**values)
    )
    return bool((await conn.execute(statement)).rowcount)


async def finish(
    conn: AsyncConnection, table: Table, row_id: str, *, owner: str, **values: Any
) -> bool:
    """`change`, and the row's lease ends (it is done, or due again later)."""
    return await change(
        conn, table, row_id, owner=owner, lease_owner=None, lease_until=None, **values
    )
