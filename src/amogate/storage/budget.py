"""The outbound request budget, shared by every process that uses the same database.

One row per amoCRM account is a token bucket. Taking a slot is one short transaction that
refills the bucket by the elapsed time and takes one token — or reserves the next one (the
balance goes negative) and tells the caller how long to wait, so waiting callers are spaced
evenly instead of stampeding. A 429 empties the bucket and pauses everyone; a 403 blocks calls
for a cool-down. Times are unix seconds (`time.time()`), comparable across processes and hosts
with synchronised clocks.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from amogate.storage.tables import amo_budget


@dataclass(frozen=True)
class Slot:
    """The answer to "may I call now?"."""

    wait: float  # seconds to wait before calling (0: call now); the slot is already reserved
    blocked_for: float = 0.0  # > 0: a 403 cool-down is active, do not call
    paused_for: float = 0.0  # > 0: a 429 pause is active, ask again after it (nothing reserved)


@dataclass(frozen=True)
class BudgetState:
    tokens: float
    paused_until: float
    blocked_until: float
    consecutive_429: int
    total_429: int
    total_403: int
    # The moment the balance refers to: never earlier than the stored one. A caller whose
    # clock was read before it won the row's lock (another process took a slot meanwhile)
    # must not move the row back in time, or the next caller would be refilled twice.
    as_of: float = 0.0


async def _locked_row(conn: AsyncConnection, key: str, rate: float, now: float) -> BudgetState:
    locking = select(amo_budget).where(amo_budget.c.account_key == key).with_for_update()
    row = (await conn.execute(locking)).first()
    if row is None:
        # First use. Several processes may get here at once on PostgreSQL (nothing to lock
        # yet): all but one insert nothing, then everyone locks the one row.
        await conn.execute(
            insert_ignoring_conflict(conn, amo_budget).values(
                account_key=key,
                tokens=1.0,
                updated_at=now,
                paused_until=0.0,
                blocked_until=0.0,
                consecutive_429=0,
                total_429=0,
                total_403=0,
            )
        )
        row = (await conn.execute(locking)).first()
        assert row is not None
    elapsed = max(0.0, now - row.updated_at)
    tokens = min(1.0, row.tokens + elapsed * rate)
    return BudgetState(
        tokens,
        row.paused_until,
        row.blocked_until,
        row.consecutive_429,
        row.total_429,
        row.total_403,
        as_of=max(now, row.updated_at),
    )


def insert_ignoring_conflict(
    conn: AsyncConnection, table: Table
) -> postgresql.Insert | sqlite.Insert:
    """`INSERT ... ON CONFLICT DO NOTHING` for the connection's database."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


async def take(conn: AsyncConnection, key: str, *, rate: float, now: float) -> Slot:
    """Take (or reserve) one request slot. Call inside a write transaction."""
    state = await _locked_row(conn, key, rate, now)
    if state.blocked_until > now:
        await _store(conn, key, tokens=state.tokens, now=state.as_of)
        return Slot(wait=0.0, blocked_for=state.blocked_until - now)
    if state.paused_until > now:
        await _store(conn, key, tokens=state.tokens, now=state.as_of)
        return Slot(wait=0.0, paused_for=state.paused_until - now)
    tokens = state.tokens - 1.0
    await _store(conn, key, tokens=tokens, now=state.as_of)
    # The balance is as of `state.as_of`, which may be a little after this caller's `now`.
    return Slot(wait=(state.as_of - now) + max(0.0, -tokens / rate))


async def _store(conn: AsyncConnection, key: str, *, tokens: float, now: float) -> None:
    await conn.execute(
        update(amo_budget)
        .where(amo_budget.c.account_key == key)
        .values(tokens=tokens, updated_at=now)
    )


async def record_rate_limited(
    conn: AsyncConnection,
    key: str,
    *,
    rate: float,
    now: float,
    retry_after: float | None,
    base_pause: float,
    max_pause: float,
) -> float:
    """A 429 came back: pause every caller. Returns the pause in seconds."""
    state = await _locked_row(conn, key, rate, now)
    if state.paused_until > now:
        # Calls already in flight when the pause began answer 429 too: not a new offence.
        pause_until = max(state.paused_until, now + (retry_after or 0.0))
        streak = state.consecutive_429
    else:
        recent = now - state.paused_until <= 60.0
        streak = state.consecutive_429 + 1 if recent else 1
        pause = retry_after if retry_after is not None else base_pause * 2 ** (streak - 1)
        pause_until = now + min(max(pause, 0.0), max_pause)
    await conn.execute(
        update(amo_budget)
        .where(amo_budget.c.account_key == key)
        .values(
            tokens=min(state.tokens, 0.0),
            updated_at=state.as_of,
            paused_until=pause_until,
            consecutive_429=streak,
            total_429=state.total_429 + 1,
        )
    )
    return pause_until - now


async def record_blocked(
    conn: AsyncConnection, key: str, *, rate: float, now: float, cooldown: float
) -> None:
    state = await _locked_row(conn, key, rate, now)
    await conn.execute(
        update(amo_budget)
        .where(amo_budget.c.account_key == key)
        .values(
            tokens=state.tokens,
            updated_at=state.as_of,
            blocked_until=max(state.blocked_until, now + cooldown),
            total_403=state.total_403 + 1,
        )
    )


async def clear_block(conn: AsyncConnection, key: str) -> None:
    await conn.execute(
        update(amo_budget).where(amo_budget.c.account_key == key).values(blocked_until=0.0)
    )


async def read(conn: AsyncConnection, key: str) -> BudgetState | None:
    row = (await conn.execute(select(amo_budget).where(amo_budget.c.account_key == key))).first()
    if row is None:
        return None
    return BudgetState(
        row.tokens,
        row.paused_until,
        row.blocked_until,
        row.consecutive_429,
        row.total_429,
        row.total_403,
        as_of=row.updated_at,
    )
