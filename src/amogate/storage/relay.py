"""The webhook relay's tables: inbound secrets, subscribers, inbound posts, events, deliveries.

An inbound post and everything it leads to are written in ONE transaction: the post (once per
account and body hash: an identical repeat inserts nothing), its events, and a delivery row per
event and subscriber of that event. So an event amoCRM was told "200" about is never lost, and
the worker finds its deliveries in the table, the queue.

A relay delivery's states (relay_queue.py holds the worker's side) are those of a lead's
(storage/deliveries.py):

    queued ──claim──> sending ──2xx──> delivered
                        │
                        ├─ no answer / non-2xx ──> retrying ──claim (when due)──> sending
                        ├─ give-up time passed (72 h) ──> failed
                        ╰─ worker died: the lease runs out and another worker claims it again

Claiming leases due rows with `FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's `BEGIN
IMMEDIATE` gives the same guarantee.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from amogate.storage.tables import (
    relay_accounts,
    relay_deliveries,
    relay_events,
    relay_posts,
    relay_subscribers,
)

QUEUED = "queued"  # a new delivery; the other states: relay_queue.py

DEFAULT_KEEP_TRYING = timedelta(hours=72)
ERROR_LIMIT = 500


_last_stamp = 0


def new_id(prefix: str) -> str:
    """`prefix_` + 16 hex digits of a strictly increasing nanosecond stamp + 8 random ones:
    ids sort in the order they were made (events of one post keep the post's order)."""
    global _last_stamp
    _last_stamp = max(time.time_ns(), _last_stamp + 1)
    return f"{prefix}_{_last_stamp:016x}{secrets.token_hex(4)}"


# --- rows -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RelayAccount:
    account_key: str
    inbound_secret: str
    registered_events: list[str] | None
    registered_at: datetime | None
    amo_webhook_id: int | None
    amo_disabled: bool
    reenabled_count: int
    checked_at: datetime | None
    check_error: str | None


@dataclass(frozen=True)
class Subscriber:
    id: str
    account_key: str
    url: str
    events: list[str]
    secret: str
    created_at: datetime


@dataclass(frozen=True)
class NewEvent:
    """An event to store: `code` is what subscribers subscribe to (status_lead, gateway.*)."""

    code: str
    entity: str
    action: str
    occurred_at: datetime
    data: dict[str, Any]


@dataclass(frozen=True)
class Event:
    id: str
    account_key: str
    code: str
    entity: str
    action: str
    occurred_at: datetime
    received_at: datetime
    data: dict[str, Any]


@dataclass(frozen=True)
class StoredPost:
    duplicate: bool
    event_ids: list[str]
    deliveries: int


def _account(row: Row[Any]) -> RelayAccount:
    m = row._mapping
    return RelayAccount(
        account_key=m["account_key"],
        inbound_secret=m["inbound_secret"],
        registered_events=m["registered_events"],
        registered_at=m["registered_at"],
        amo_webhook_id=m["amo_webhook_id"],
        amo_disabled=bool(m["amo_disabled"]),
        reenabled_count=int(m["reenabled_count"] or 0),
        checked_at=m["checked_at"],
        check_error=m["check_error"],
    )


def _subscriber(row: Row[Any]) -> Subscriber:
    m = row._mapping
    return Subscriber(
        id=m["id"],
        account_key=m["account_key"],
        url=m["url"],
        events=list(m["events"]),
        secret=m["secret"],
        created_at=m["created_at"],
    )


def event_from(m: Any) -> Event:
    return Event(
        id=m["id"],
        account_key=m["account_key"],
        code=m["code"],
        entity=m["entity"],
        action=m["action"],
        occurred_at=m["occurred_at"],
        received_at=m["received_at"],
        data=m["data"],
    )


def _insert_ignoring_conflict(conn: AsyncConnection, table: Any) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


# --- accounts (inbound secret, registration state) ------------------------------------------


async def get_account(conn: AsyncConnection, account_key: str) -> RelayAccount | None:
    row = (
        await conn.execute(
            select(relay_accounts).where(relay_accounts.c.account_key == account_key)
        )
    ).first()
    return None if row is None else _account(row)


async def list_accounts(conn: AsyncConnection) -> list[RelayAccount]:
    rows = await conn.execute(select(relay_accounts).order_by(relay_accounts.c.account_key))
    return [_account(row) for row in rows]


async def ensure_account(conn: AsyncConnection, account_key: str, now: datetime) -> RelayAccount:
    """The account's relay row, created with a new random inbound secret when missing."""
    await conn.execute(
        _insert_ignoring_conflict(conn, relay_accounts).values(
            account_key=account_key,
            inbound_secret=secrets.token_urlsafe(24),
            amo_disabled=False,
            reenabled_count=0,
            created_at=now,
        )
    )
    found = await get_account(conn, account_key)
    assert found is not None
    return found


async def set_registered(
    conn: AsyncConnection,
    account_key: str,
    *,
    events: Sequence[str],
    webhook_id: int | None,
    now: datetime,
    reenabled: bool = False,
) -> None:
    values: dict[str, Any] = {
        "registered_events": list(events),
        "registered_at": now,
        "amo_webhook_id": webhook_id,
        "amo_disabled": False,
        "checked_at": now,
        "check_error": None,
    }
    if reenabled:
        values["reenabled_count"] = relay_accounts.c.reenabled_count + 1
    await conn.execute(
        update(relay_accounts).where(relay_accounts.c.account_key == account_key).values(values)
    )


async def set_checked(
    conn: AsyncConnection,
    account_key: str,
    *,
    now: datetime,
    disabled: bool | None = None,
    error: str | None = None,
) -> None:
    values: dict[str, Any] = {"checked_at": now, "check_error": error}
    if disabled is not None:
        values["amo_disabled"] = disabled
    await conn.execute(
        update(relay_accounts).where(relay_accounts.c.account_key == account_key).values(values)
    )


# --- subscribers ----------------------------------------------------------------------------


async def add_subscriber(
    conn: AsyncConnection,
    *,
    account_key: str,
    url: str,
    events: Sequence[str],
    secret: str,
    now: datetime,
) -> Subscriber:
    subscriber = Subscriber(new_id("sub"), account_key, url, list(events), secret, now)
    await conn.execute(
        insert(relay_subscribers).values(
            id=subscriber.id,
            account_key=account_key,
            url=url,
            events=subscriber.events,
            secret=secret,
            created_at=now,
        )
    )
    return subscriber


async def list_subscribers(
    conn: AsyncConnection, account_key: str | None = None
) -> list[Subscriber]:
    query = select(relay_subscribers).order_by(
        relay_subscribers.c.created_at, relay_subscribers.c.id
    )
    if account_key is not None:
        query = query.where(relay_subscribers.c.account_key == account_key)
    return [_subscriber(row) for row in await conn.execute(query)]


async def remove_subscriber(conn: AsyncConnection, subscriber_id: str) -> bool:
    """Delete a subscriber and (cascade) its deliveries, sent or not."""
    await conn.execute(
        delete(relay_deliveries).where(relay_deliveries.c.subscriber_id == subscriber_id)
    )
    result = await conn.execute(
        delete(relay_subscribers).where(relay_subscribers.c.id == subscriber_id)
    )
    return bool(result.rowcount)


# --- events in ------------------------------------------------------------------------------


async def store_post(
    conn: AsyncConnection,
    *,
    account_key: str,
    body_hash: str,
    body: str,
    events: Sequence[NewEvent],
    now: datetime,
    keep_trying: timedelta = DEFAULT_KEEP_TRYING,
) -> StoredPost:
    """Store one inbound post and its events, and queue them for their subscribers; a post
    whose body this account already sent is a duplicate and stores nothing."""
    post_id = new_id("post")
    result = await conn.execute(
        _insert_ignoring_conflict(conn, relay_posts).values(
            id=post_id,
            account_key=account_key,
            body_hash=body_hash,
            body=body,
            event_count=len(events),
            received_at=now,
        )
    )
    if not result.rowcount:
        return StoredPost(duplicate=True, event_ids=[], deliveries=0)
    ids, queued = await offer_events(
        conn, account_key, events, now=now, post_id=post_id, keep_trying=keep_trying
    )
    return StoredPost(duplicate=False, event_ids=ids, deliveries=queued)


async def offer_events(
    conn: AsyncConnection,
    account_key: str,
    events: Sequence[NewEvent],
    *,
    now: datetime,
    post_id: str | None = None,
    keep_trying: timedelta = DEFAULT_KEEP_TRYING,
) -> tuple[list[str], int]:
    """Store events and queue a delivery for each subscriber of each; (event ids, deliveries)."""
    if not events:
        return [], 0
    subscribers = await list_subscribers(conn, account_key)
    event_rows: list[dict[str, Any]] = []
    delivery_rows: list[dict[str, Any]] = []
    for event in events:
        event_id = new_id("evt")
        event_rows.append(
            {
                "id": event_id,
                "account_key": account_key,
                "code": event.code[:64],
                "entity": event.entity[:64],
                "action": event.action[:64],
                "occurred_at": event.occurred_at,
                "received_at": now,
                "data": event.data,
                "post_id": post_id,
            }
        )
        for subscriber in subscribers:
            if event.code in subscriber.events:
                delivery_rows.append(
                    {
                        "id": new_id("whd"),
                        "event_id": event_id,
                        "subscriber_id": subscriber.id,
                        "account_key": account_key,
                        "status": QUEUED,
                        "attempts": 0,
                        "created_at": now,
                        "updated_at": now,
                        "next_at": now,
                        "give_up_at": now + keep_trying,
                    }
                )
    await conn.execute(insert(relay_events), event_rows)
    if delivery_rows:
        await conn.execute(insert(relay_deliveries), delivery_rows)
    return [row["id"] for row in event_rows], len(delivery_rows)


async def offer_gateway_event(
    conn: AsyncConnection,
    code: str,
    data: dict[str, Any],
    *,
    now: datetime,
    account_key: str = "default",
) -> None:
    """amogate's own event (`gateway.delivery_failed`, ...) to its subscribers, inside the
    caller's transaction: it is queued exactly when what it reports is committed."""
    entity, _, action = code.partition(".")
    await offer_events(conn, account_key, [NewEvent(code, entity, action, now, data)], now=now)


GATEWAY_DELIVERY_FAILED = "gateway.delivery_failed"
GATEWAY_REAUTHORIZATION_NEEDED = "gateway.reauthorization_needed"
GATEWAY_WEBHOOK_DISABLED = "gateway.webhook_disabled"


async def delivery_failed(
    conn: AsyncConnection, delivery_id: str, reason: str, now: datetime, account: str = "default"
) -> None:
    """A lead's delivery ended `failed` (the hook in the lead worker)."""
    data = {"delivery_id": delivery_id, "reason": reason[:ERROR_LIMIT]}
    await offer_gateway_event(conn, GATEWAY_DELIVERY_FAILED, data, now=now, account_key=account)


async def reauthorization_needed(
    conn: AsyncConnection, account: str, reason: str | None, now: datetime
) -> None:
    """amoCRM refused to renew an account's tokens (the hook in the token manager)."""
    data = {
        "account": account,
        "reason": (reason or "")[:ERROR_LIMIT],
        "action": "reconnect: open /admin or /oauth/authorize, or run `amogate auth url`",
    }
    await offer_gateway_event(
        conn, GATEWAY_REAUTHORIZATION_NEEDED, data, now=now, account_key=account
    )


# --- reading --------------------------------------------------------------------------------


async def recent_events(
    conn: AsyncConnection, *, account_key: str | None = None, limit: int = 20
) -> list[Event]:
    query = select(relay_events).order_by(
        relay_events.c.received_at.desc(), relay_events.c.id.desc()
    )
    if account_key is not None:
        query = query.where(relay_events.c.account_key == account_key)
    rows = await conn.execute(query.limit(limit))
    return [event_from(row._mapping) for row in rows]


async def get_event(conn: AsyncConnection, event_id: str) -> Event | None:
    row = (await conn.execute(select(relay_events).where(relay_events.c.id == event_id))).first()
    return None if row is None else event_from(row._mapping)


async def post_count(conn: AsyncConnection, account_key: str | None = None) -> int:
    query = select(func.count()).select_from(relay_posts)
    if account_key is not None:
        query = query.where(relay_posts.c.account_key == account_key)
    return int((await conn.execute(query)).scalar_one())


# --- retention ------------------------------------------------------------------------------


async def erase_raw_bodies(
    conn: AsyncConnection, *, received_before: datetime, now: datetime, limit: int
) -> int:
    """Erase the raw body of up to `limit` posts received before the cut-off (the hash stays,
    so a late repeat is still recognised); how many were erased."""
    ids = [
        row.id
        for row in await conn.execute(
            select(relay_posts.c.id)
            .where(relay_posts.c.erased_at.is_(None), relay_posts.c.received_at < received_before)
            .limit(limit)
        )
    ]
    if not ids:
        return 0
    await conn.execute(
        update(relay_posts).where(relay_posts.c.id.in_(ids)).values(body=None, erased_at=now)
    )
    return len(ids)


async def delete_old_events(conn: AsyncConnection, *, received_before: datetime, limit: int) -> int:
    """Delete up to `limit` events received before the cut-off that no delivery still waits
    for, with their deliveries (an event holds amoCRM's data about people); how many."""
    waiting = (
        select(relay_deliveries.c.id)
        .where(
            relay_deliveries.c.event_id == relay_events.c.id,
            relay_deliveries.c.status.in_(("queued", "sending", "retrying")),
        )
        .exists()
    )
    ids = [
        row.id
        for row in await conn.execute(
            select(relay_events.c.id)
            .where(relay_events.c.received_at < received_before, ~waiting)
            .limit(limit)
        )
    ]
    if not ids:
        return 0
    await conn.execute(delete(relay_deliveries).where(relay_deliveries.c.event_id.in_(ids)))
    await conn.execute(delete(relay_events).where(relay_events.c.id.in_(ids)))
    return len(ids)
