"""Sending deliveries again by hand (the admin page's Retry, `amogate deliveries retry`).

A requeued delivery is due at once and gets a fresh retry period of `max_age`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from amogate.storage import deliveries as store
from amogate.storage.db import Database


async def retry_delivery(database: Database, delivery_id: str, max_age: timedelta) -> bool:
    """Queue a failed or waiting delivery again; False when it is delivered, being sent or
    unknown."""
    now = datetime.now(UTC)
    async with database.transaction() as conn:
        return await store.requeue(conn, delivery_id, now=now, give_up_at=now + max_age)


async def retry_all_failed(database: Database, max_age: timedelta) -> int:
    """Queue every failed delivery again; how many."""
    now = datetime.now(UTC)
    async with database.transaction() as conn:
        return await store.requeue_failed(conn, now=now, give_up_at=now + max_age)
