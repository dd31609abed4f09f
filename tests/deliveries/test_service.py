"""The deliveries service the API, the admin page and the CLI share: one view of a delivery,
one requeue rule, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from amogate.deliveries.service import Deliveries
from amogate.storage import deliveries as store
from amogate.storage import migrate
from amogate.storage.db import Database

NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
MAX_AGE = timedelta(hours=72)


@pytest.fixture
async def service(database_url: str) -> AsyncIterator[Deliveries]:
    database = Database(database_url)
    await migrate.upgrade(database)
    try:
        yield Deliveries(database, MAX_AGE, clock=lambda: NOW + timedelta(hours=1))
    finally:
        await database.dispose()


async def add(service: Deliveries, *, api_key_id: str = "k1") -> str:
    delivery_id = uuid.uuid4().hex
    async with service.database.transaction() as conn:
        await store.insert_delivery(
            conn,
            delivery_id=delivery_id,
            payload={"lead": {"name": "L"}, "contact": {"name": "C"}},
            lead_name="L",
            contact_name="C",
            api_key_id=api_key_id,
            request_id=None,
            now=NOW,
            give_up_at=NOW + MAX_AGE,
        )
    return delivery_id


async def fail(service: Deliveries, delivery_id: str) -> None:
    async with service.database.transaction() as conn:
        [claimed] = await store.claim_due(
            conn, owner="w", now=NOW, lease_until=NOW + timedelta(seconds=60), limit=1
        )
        assert claimed.id == delivery_id
        await store.mark_failed(conn, delivery_id, owner="w", now=NOW, error="no", details=None)


async def test_a_key_sees_only_its_own_deliveries_and_the_view_shows_no_key(
    service: Deliveries,
) -> None:
    delivery_id = await add(service, api_key_id="k1")

    assert await service.get(delivery_id, api_key_id="k2") is None
    record = await service.get(delivery_id, api_key_id="k1")
    assert record is not None
    view = record.view()
    assert view["delivery_id"] == delivery_id
    assert view["status"] == store.QUEUED
    assert view["next_attempt_at"] is not None
    assert "api_key_id" not in view
    assert "k1" not in str(view)
    assert await service.get(uuid.uuid4().hex) is None


async def test_a_failed_delivery_is_requeued_with_a_fresh_retry_period(
    service: Deliveries,
) -> None:
    delivery_id = await add(service)
    await fail(service, delivery_id)

    assert [d.id for d in await service.recent(status=store.FAILED)] == [delivery_id]
    assert await service.requeue(delivery_id) is True
    record = await service.get(delivery_id)
    assert record is not None
    assert record.delivery.status == store.RETRYING
    assert record.delivery.give_up_at == NOW + timedelta(hours=1) + MAX_AGE
    assert await service.requeue(uuid.uuid4().hex) is False


async def test_requeue_failed_sends_every_failed_delivery_again(service: Deliveries) -> None:
    failed = await add(service)
    await fail(service, failed)
    await add(service)

    assert await service.requeue_failed() == 1
    assert await service.recent(status=store.FAILED) == []
