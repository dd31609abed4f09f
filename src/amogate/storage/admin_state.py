"""The admin page's shared sign-in state: one `admin_state` row (see tables.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from amogate.storage.budget import insert_ignoring_conflict
from amogate.storage.tables import admin_state

ROW_ID = 1


@dataclass(frozen=True)
class AdminState:
    session_secret: str
    session_generation: int
    password_hash: str | None

    def __repr__(self) -> str:  # never print the secret
        return f"AdminState(generation={self.session_generation})"


async def get(conn: AsyncConnection) -> AdminState | None:
    row = (await conn.execute(select(admin_state).where(admin_state.c.id == ROW_ID))).first()
    if row is None:
        return None
    return AdminState(row.session_secret, int(row.session_generation), row.password_hash)


async def ensure(conn: AsyncConnection, *, new_secret: str, now: datetime) -> AdminState:
    """The row, created with `new_secret` on first use (a concurrent first use by another
    process keeps whichever secret was inserted first). Call inside a write transaction."""
    await conn.execute(
        insert_ignoring_conflict(conn, admin_state).values(
            id=ROW_ID, session_secret=new_secret, session_generation=1, updated_at=now
        )
    )
    state = await get(conn)
    assert state is not None
    return state


async def generation(conn: AsyncConnection) -> int | None:
    value = (
        await conn.execute(
            select(admin_state.c.session_generation).where(admin_state.c.id == ROW_ID)
        )
    ).scalar()
    return None if value is None else int(value)


async def end_sessions(
    conn: AsyncConnection, *, now: datetime, password_hash: str | None = None
) -> int:
    """Invalidate every session (log-out, a new password); the new generation."""
    values: dict[str, object] = {
        "session_generation": admin_state.c.session_generation + 1,
        "updated_at": now,
    }
    if password_hash is not None:
        values["password_hash"] = password_hash
    await conn.execute(update(admin_state).where(admin_state.c.id == ROW_ID).values(values))
    current = await generation(conn)
    assert current is not None
    return current


async def set_password_hash(conn: AsyncConnection, password_hash: str, *, now: datetime) -> None:
    """Store a re-hash of the same password (new parameters): sessions stay valid."""
    await conn.execute(
        update(admin_state)
        .where(admin_state.c.id == ROW_ID)
        .values(password_hash=password_hash, updated_at=now)
    )
