"""Read-only views of the delivery queue for operators: filtered pages (admin page), counts
by state, the oldest undelivered lead (admin page, /metrics, /health/ready) and the latest
attempts of any delivery (amoCRM's reachability as the worker saw it).

Rows are loaded through `storage.deliveries` (its row type and mapping); only the filters,
ordering and aggregates are built here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from amogate.storage import deliveries as store
from amogate.storage.tables import deliveries, delivery_attempts

UNDELIVERED = (store.QUEUED, store.SENDING, store.RETRYING)


@dataclass(frozen=True)
class DeliveryFilter:
    status: str | None = None
    created_from: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive
    text: str | None = None
    account: str | None = None  # one amoCRM account's deliveries


@dataclass(frozen=True)
class DeliveryPage:
    items: list[store.Delivery]
    total: int


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _conditions(f: DeliveryFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if f.status:
        conditions.append(deliveries.c.status == f.status)
    if f.account:
        conditions.append(deliveries.c.account_key == f.account)
    if f.created_from is not None:
        conditions.append(deliveries.c.created_at >= f.created_from)
    if f.created_before is not None:
        conditions.append(deliveries.c.created_at < f.created_before)
    if f.text:
        pattern = _like_pattern(f.text)
        conditions.append(
            or_(
                deliveries.c.lead_name.ilike(pattern, escape="\\"),
                deliveries.c.contact_name.ilike(pattern, escape="\\"),
            )
        )
    return conditions


async def search(
    conn: AsyncConnection, f: DeliveryFilter, *, limit: int, offset: int
) -> DeliveryPage:
    """Newest first."""
    conditions = _conditions(f)
    total = (
        await conn.execute(select(func.count()).select_from(deliveries).where(*conditions))
    ).scalar_one()
    ids_query = (
        select(deliveries.c.id)
        .where(*conditions)
        .order_by(deliveries.c.created_at.desc(), deliveries.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    ids = [row.id for row in await conn.execute(ids_query)]
    order = {delivery_id: i for i, delivery_id in enumerate(ids)}
    items = sorted(await store.get_many(conn, ids), key=lambda d: order[d.id])
    return DeliveryPage(items=items, total=int(total))


async def counts(conn: AsyncConnection, since: datetime | None = None) -> dict[str, int]:
    """Deliveries (created since `since`, when given) by state; every state present."""
    query = select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
    if since is not None:
        query = query.where(deliveries.c.created_at >= since)
    found = dict.fromkeys(store.STATUSES, 0)
    found.update({str(status): int(count) for status, count in await conn.execute(query)})
    return found


async def oldest_undelivered(conn: AsyncConnection) -> datetime | None:
    """When the oldest lead not yet delivered (queued, sending, retrying) was accepted."""
    value = (
        await conn.execute(
            select(func.min(deliveries.c.created_at)).where(deliveries.c.status.in_(UNDELIVERED))
        )
    ).scalar()
    if isinstance(value, str):  # SQLite may hand back text for an aggregate
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value if isinstance(value, datetime) else None


async def latest_attempts(conn: AsyncConnection, limit: int = 20) -> list[store.Attempt]:
    """The most recent attempts of any delivery, newest first."""
    rows = await conn.execute(
        select(delivery_attempts).order_by(delivery_attempts.c.id.desc()).limit(limit)
    )
    return [
        store.Attempt(
            step=r.step,
            started_at=r.started_at,
            duration_ms=r.duration_ms,
            outcome=r.outcome,
            http_status=r.http_status,
            detail=r.detail,
        )
        for r in rows
    ]
