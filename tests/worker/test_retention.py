"""The retention purge on SQLite and PostgreSQL: personal data of old delivered leads erased in
bounded batches, the rows kept; expired idempotency keys, OAuth states and old rate windows
deleted; nothing younger touched."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select, update

from amogate.storage import accounts, idempotency, migrate, rate_counters
from amogate.storage import deliveries as store
from amogate.storage.db import Database
from amogate.storage.tables import deliveries, delivery_attempts, idempotency_keys
from amogate.worker import retention
from amogate.worker.retention import RetentionPurge

NOW = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
RETENTION = timedelta(days=30)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await migrate.upgrade(database)
    try:
        yield database
    finally:
        await database.dispose()


async def add(db: Database, count: int, *, at: datetime) -> list[str]:
    """`count` queued leads accepted at `at`."""
    ids = [uuid.uuid4().hex for _ in range(count)]
    async with db.transaction() as conn:
        for i, delivery_id in enumerate(ids):
            await store.insert_delivery(
                conn,
                delivery_id=delivery_id,
                payload={"lead": {"name": f"L{i}"}, "contact": {"name": "C"}},
                lead_name=f"L{i}",
                contact_name="C",
                api_key_id="admin",
                request_id=None,
                now=at,
                give_up_at=at + timedelta(hours=72),
            )
    return ids


def purge(db: Database) -> RetentionPurge:
    return RetentionPurge(db, retention=RETENTION, interval_s=3600, clock=lambda: NOW)


async def delivered(db: Database, count: int, *, days_ago: float) -> list[str]:
    at = NOW - timedelta(days=days_ago)
    ids = await add(db, count, at=at)
    async with db.transaction() as conn:
        await conn.execute(
            update(deliveries)
            .where(deliveries.c.id.in_(ids))
            .values(
                status=store.DELIVERED,
                delivered_at=at,
                amo_lead_id=4242,
                error_details={"note": "amoCRM said: +998901234567 is odd"},
            )
        )
        for delivery_id in ids:
            await store.record_attempt(
                conn,
                delivery_id,
                step="form",
                started_at=at,
                duration_ms=12,
                outcome="ok",
                http_status=200,
                detail='{"name": "Alisher"}',
            )
    return ids


async def test_old_delivered_leads_lose_their_personal_data_and_keep_their_row(
    db: Database,
) -> None:
    old = await delivered(db, 3, days_ago=31)
    young = await delivered(db, 2, days_ago=29)
    [waiting] = await add(db, 1, at=NOW - timedelta(days=40))  # never delivered: kept to retry

    report = await purge(db).run_once()

    assert report.erased == 3
    async with db.read() as conn:
        rows = {d.id: d for d in await store.get_many(conn, [*old, *young, waiting])}
        rows_of_attempts = await conn.execute(
            select(delivery_attempts.c.delivery_id, delivery_attempts.c.detail)
        )
        details = {delivery_id: detail for delivery_id, detail in rows_of_attempts}
        outcomes = await store.attempts_of(conn, old[0])
    for delivery_id in old:
        row = rows[delivery_id]
        assert (row.payload, row.lead_name, row.contact_name) == ({}, "", "")
        assert row.error_details is None
        assert row.erased_at == NOW
        assert (row.status, row.amo_lead_id) == (store.DELIVERED, 4242)
        assert details[delivery_id] is None
    assert [(a.outcome, a.http_status) for a in outcomes] == [("ok", 200)]
    for delivery_id in [*young, waiting]:
        assert rows[delivery_id].payload["lead"]["name"].startswith("L")
        assert rows[delivery_id].erased_at is None
    assert details[young[0]] == '{"name": "Alisher"}'


async def test_a_round_is_bounded_and_the_next_round_goes_on(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "BATCH", 4)
    monkeypatch.setattr(retention, "MAX_BATCHES", 2)
    await delivered(db, 11, days_ago=60)
    first = await purge(db).run_once()
    second = await purge(db).run_once()
    third = await purge(db).run_once()
    assert (first.erased, second.erased, third.erased) == (8, 3, 0)


async def test_expired_idempotency_keys_states_and_old_windows_are_deleted(db: Database) -> None:
    async with db.transaction() as conn:
        for n, expires in enumerate([NOW - timedelta(hours=1), NOW + timedelta(hours=1)]):
            await conn.execute(
                insert(idempotency_keys).values(
                    api_key_id="k",
                    key=f"key-{n}",
                    body_hash="h",
                    created_at=expires - timedelta(hours=24),
                    expires_at=expires,
                )
            )
        await accounts.add_oauth_state(conn, "fresh", NOW, NOW + timedelta(minutes=15))
        await accounts.add_oauth_state(
            conn, "old", NOW - timedelta(hours=1), NOW - timedelta(minutes=45)
        )
        await rate_counters.hit(conn, "api_key:x", int((NOW - timedelta(days=2)).timestamp()))
        await rate_counters.hit(conn, "api_key:y", int(NOW.timestamp()))

    report = await purge(db).run_once()

    assert (report.idempotency_keys, report.oauth_states, report.rate_windows) == (1, 1, 1)
    async with db.read() as conn:
        left = (await conn.execute(select(idempotency_keys.c.key))).scalars().all()
        assert left == ["key-1"]
        assert await accounts.get_oauth_state(conn, "fresh") is not None
        assert await accounts.get_oauth_state(conn, "old") is None
        assert await rate_counters.current(conn, "api_key:y", int(NOW.timestamp())) == 1


async def test_a_purge_is_due_once_per_interval() -> None:
    ticks = [1000.0]
    job = RetentionPurge(
        Database("sqlite://"), retention=RETENTION, interval_s=60, monotonic=lambda: ticks[0]
    )
    assert job.due()
    job._next_at = ticks[0] + 60  # what run_once sets
    ticks[0] += 59
    assert not job.due()
    ticks[0] += 1
    assert job.due()


async def test_idempotency_purge_is_bounded(db: Database) -> None:
    async with db.transaction() as conn:
        for n in range(7):
            await conn.execute(
                insert(idempotency_keys).values(
                    api_key_id="k",
                    key=f"key-{n}",
                    body_hash="h",
                    created_at=NOW - timedelta(days=2),
                    expires_at=NOW - timedelta(days=1, minutes=n),
                )
            )
    async with db.transaction() as conn:
        assert await idempotency.purge_expired(conn, now=NOW, limit=5) == 5
    async with db.read() as conn:
        count = (await conn.execute(select(func.count()).select_from(idempotency_keys))).scalar()
    assert count == 2
