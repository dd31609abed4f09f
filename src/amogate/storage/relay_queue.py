"""The relay deliveries as a queue: the worker's claims and results, and the operator's views.

A relay delivery (one event to one subscriber, written by storage/relay.py) is leased like a
lead's: `claim_due` takes due rows with `FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite's
`BEGIN IMMEDIATE` gives the same guarantee); a worker only changes rows it still holds; a
lease that runs out (the worker died) makes the row claimable again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from amogate.storage import leases
from amogate.storage.relay import ERROR_LIMIT, QUEUED, Event, event_from
from amogate.storage.tables import relay_deliveries, relay_events, relay_subscribers

SENDING = "sending"
RETRYING = "retrying"
DELIVERED = "delivered"
FAILED = "failed"
STATUSES = (QUEUED, SENDING, RETRYING, DELIVERED, FAILED)
PENDING = (QUEUED, SENDING, RETRYING)


@dataclass(frozen=True)
class RelayDelivery:
    id: str
    event_id: str
    subscriber_id: str
    account_key: str
    status: str
    attempts: int
    created_at: datetime
    updated_at: datetime
    next_at: datetime
    give_up_at: datetime
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None
    code: str = ""
    url: str = ""


@dataclass(frozen=True)
class Due:
    """A claimed delivery with what sending it needs."""

    delivery: RelayDelivery
    event: Event
    url: str
    secret: str


def _delivery(m: Any, *, code: str = "", url: str = "") -> RelayDelivery:
    return RelayDelivery(
        id=m["id"],
        event_id=m["event_id"],
        subscriber_id=m["subscriber_id"],
        account_key=m["account_key"],
        status=m["status"],
        attempts=m["attempts"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        next_at=m["next_at"],
        give_up_at=m["give_up_at"],
        last_status=m["last_status"],
        last_error=m["last_error"],
        delivered_at=m["delivered_at"],
        code=code,
        url=url,
    )


# --- the worker's side ----------------------------------------------------------------------


def _due(now: datetime) -> Any:
    waiting = and_(
        relay_deliveries.c.status.in_((QUEUED, RETRYING)), relay_deliveries.c.next_at <= now
    )
    abandoned = and_(relay_deliveries.c.status == SENDING, relay_deliveries.c.lease_until < now)
    return or_(waiting, abandoned)


async def any_due(conn: AsyncConnection, now: datetime) -> bool:
    """Whether a claim would find anything (a cheap read, so an idle worker never takes the
    write lock just to find nothing)."""
    row = (await conn.execute(select(relay_deliveries.c.id).where(_due(now)).limit(1))).first()
    return row is not None


async def claim_due(
    conn: AsyncConnection,
    *,
    owner: str,
    now: datetime,
    lease_until: datetime,
    limit: int,
    skip_subscribers: Sequence[str] = (),
) -> list[Due]:
    """Lease up to `limit` due deliveries (oldest first) to `owner`, with their events and
    subscribers, except those of `skip_subscribers`. Call inside a write transaction; rows
    others hold are skipped."""
    condition = _due(now)
    if skip_subscribers:
        condition = and_(condition, relay_deliveries.c.subscriber_id.not_in(list(skip_subscribers)))
    candidates = (
        select(relay_deliveries.c.id)
        .where(condition)
        .order_by(relay_deliveries.c.next_at, relay_deliveries.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = [row.id for row in await conn.execute(candidates)]
    if not ids:
        return []
    await conn.execute(
        update(relay_deliveries)
        .where(relay_deliveries.c.id.in_(ids))
        .values(status=SENDING, lease_owner=owner, lease_until=lease_until, updated_at=now)
    )
    rows = await conn.execute(
        select(
            relay_deliveries,
            relay_events.c.code,
            relay_events.c.entity,
            relay_events.c.action,
            relay_events.c.occurred_at,
            relay_events.c.received_at,
            relay_events.c.data,
            relay_subscribers.c.url,
            relay_subscribers.c.secret,
        )
        .join(relay_events, relay_events.c.id == relay_deliveries.c.event_id)
        .join(relay_subscribers, relay_subscribers.c.id == relay_deliveries.c.subscriber_id)
        .where(relay_deliveries.c.id.in_(ids))
        .order_by(relay_deliveries.c.next_at, relay_deliveries.c.id)
    )
    claimed = []
    for row in rows:
        m = row._mapping
        event = event_from({**m, "id": m["event_id"]})
        claimed.append(
            Due(_delivery(m, code=m["code"], url=m["url"]), event, m["url"], m["secret"])
        )
    return claimed


async def mark_delivered(
    conn: AsyncConnection, delivery_id: str, *, owner: str, now: datetime, status: int
) -> bool:
    return await leases.finish(
        conn,
        relay_deliveries,
        delivery_id,
        owner=owner,
        status=DELIVERED,
        attempts=relay_deliveries.c.attempts + 1,
        last_status=status,
        last_error=None,
        delivered_at=now,
        updated_at=now,
    )


async def mark_attempt_failed(
    conn: AsyncConnection,
    delivery_id: str,
    *,
    owner: str,
    now: datetime,
    retry_at: datetime | None,
    status: int | None,
    error: str,
) -> bool:
    """Record a failed attempt: retry at `retry_at`, or (None) the delivery has failed."""
    return await leases.finish(
        conn,
        relay_deliveries,
        delivery_id,
        owner=owner,
        status=FAILED if retry_at is None else RETRYING,
        attempts=relay_deliveries.c.attempts + 1,
        next_at=retry_at or now,
        last_status=status,
        last_error=error[:ERROR_LIMIT],
        updated_at=now,
    )


async def release(conn: AsyncConnection, ids: Sequence[str], *, owner: str, now: datetime) -> None:
    """Hand claimed deliveries back unsent, due as they were (no free slot for their
    subscriber, or the worker is stopping)."""
    await conn.execute(
        update(relay_deliveries)
        .where(relay_deliveries.c.id.in_(list(ids)), relay_deliveries.c.lease_owner == owner)
        .where(relay_deliveries.c.status == SENDING)
        .values(
            status=case((relay_deliveries.c.attempts == 0, QUEUED), else_=RETRYING),
            lease_owner=None,
            lease_until=None,
            updated_at=now,
        )
    )


async def retry(
    conn: AsyncConnection,
    *,
    now: datetime,
    keep_trying: timedelta,
    delivery_id: str | None = None,
) -> int:
    """Queue failed deliveries (one, or all when `delivery_id` is None) again, with a fresh
    give-up time."""
    query = update(relay_deliveries).where(relay_deliveries.c.status == FAILED)
    if delivery_id is not None:
        query = query.where(relay_deliveries.c.id == delivery_id)
    result = await conn.execute(
        query.values(status=QUEUED, next_at=now, give_up_at=now + keep_trying, updated_at=now)
    )
    return int(result.rowcount or 0)


# --- reading --------------------------------------------------------------------------------


async def list_deliveries(
    conn: AsyncConnection,
    *,
    status: str | None = None,
    account_key: str | None = None,
    limit: int = 50,
) -> list[RelayDelivery]:
    query = (
        select(relay_deliveries, relay_events.c.code, relay_subscribers.c.url)
        .join(relay_events, relay_events.c.id == relay_deliveries.c.event_id)
        .join(relay_subscribers, relay_subscribers.c.id == relay_deliveries.c.subscriber_id)
        .order_by(relay_deliveries.c.created_at.desc(), relay_deliveries.c.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(relay_deliveries.c.status == status)
    if account_key is not None:
        query = query.where(relay_deliveries.c.account_key == account_key)
    rows = await conn.execute(query)
    return [_delivery(row._mapping, code=row.code, url=row.url) for row in rows]


async def counts(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(
        select(relay_deliveries.c.status, func.count()).group_by(relay_deliveries.c.status)
    )
    return {str(status): int(count) for status, count in rows}


async def oldest_pending(conn: AsyncConnection) -> datetime | None:
    row = (
        await conn.execute(
            select(func.min(relay_deliveries.c.created_at)).where(
                relay_deliveries.c.status.in_(PENDING)
            )
        )
    ).first()
    return None if row is None else row[0]
