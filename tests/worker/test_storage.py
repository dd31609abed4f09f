"""The delivery queue and idempotency records, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from amogate.storage import deliveries as store
from amogate.storage import idempotency, migrate
from amogate.storage.db import Database
from amogate.storage.tables import deliveries

NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await migrate.upgrade(database)
    try:
        yield database
    finally:
        await database.dispose()


async def add(db: Database, count: int = 1, *, at: datetime = NOW) -> list[str]:
    ids = []
    async with db.transaction() as conn:
        for i in range(count):
            delivery_id = uuid.uuid4().hex
            await store.insert_delivery(
                conn,
                delivery_id=delivery_id,
                payload={"lead": {"name": f"L{i}"}, "contact": {"name": "C"}},
                lead_name=f"L{i}",
                contact_name="C",
                api_key_id="admin",
                request_id=None,
                now=at - timedelta(milliseconds=count - i),
                give_up_at=at + timedelta(hours=72),
            )
            ids.append(delivery_id)
    return ids


async def claim(db: Database, owner: str, *, now: datetime = NOW, limit: int = 50) -> list[str]:
    async with db.transaction() as conn:
        claimed = await store.claim_due(
            conn, owner=owner, now=now, lease_until=now + timedelta(seconds=60), limit=limit
        )
    return [d.id for d in claimed]


async def test_an_accepted_lead_waits_queued_with_its_payload(db: Database) -> None:
    [delivery_id] = await add(db)
    async with db.read() as conn:
        delivery = await store.get(conn, delivery_id)
    assert delivery is not None
    assert (delivery.status, delivery.step, delivery.attempts) == ("queued", "form", 0)
    assert delivery.payload["lead"]["name"] == "L0"
    assert delivery.give_up_at == NOW + timedelta(hours=72)


async def test_claiming_leases_the_oldest_due_deliveries_once(db: Database) -> None:
    ids = await add(db, 5)
    first = await claim(db, "w1", limit=3)
    second = await claim(db, "w2", limit=3)
    assert first == ids[:3]
    assert second == ids[3:]
    assert await claim(db, "w3") == []


async def test_deliveries_not_yet_due_are_not_claimed(db: Database) -> None:
    [delivery_id] = await add(db)
    [claimed] = await claim(db, "w1")
    async with db.transaction() as conn:
        await store.schedule_retry(
            conn,
            claimed,
            owner="w1",
            now=NOW,
            at=NOW + timedelta(seconds=30),
            error="amoCRM unavailable",
            count_attempt=True,
            outcome_unknown=False,
        )
    assert await claim(db, "w1", now=NOW + timedelta(seconds=29)) == []
    assert await claim(db, "w1", now=NOW + timedelta(seconds=30)) == [delivery_id]


async def test_a_crashed_workers_lease_runs_out_and_another_worker_takes_over(
    db: Database,
) -> None:
    [delivery_id] = await add(db)
    assert await claim(db, "crashed") == [delivery_id]
    assert await claim(db, "other", now=NOW + timedelta(seconds=59)) == []
    assert await claim(db, "other", now=NOW + timedelta(seconds=61)) == [delivery_id]
    async with db.transaction() as conn:
        late = await store.mark_delivered(conn, delivery_id, owner="crashed", now=NOW, note_id=1)
    assert not late  # the old owner can no longer change the row


async def test_two_workers_claiming_at_once_never_take_the_same_delivery(db: Database) -> None:
    ids = await add(db, 120)
    results = await asyncio.gather(*(claim(db, f"w{i}", limit=7) for i in range(12)))
    taken = [delivery_id for batch in results for delivery_id in batch]
    assert len(taken) == len(set(taken)) == 84
    results = await asyncio.gather(*(claim(db, f"v{i}", limit=50) for i in range(2)))
    rest = [delivery_id for batch in results for delivery_id in batch]
    assert sorted(taken + rest) == sorted(ids)


async def test_forms_created_in_one_batch_change_only_the_rows_this_worker_still_holds(
    db: Database,
) -> None:
    """The batch's forms are recorded with a few statements; a row whose lease another worker
    took over stays as that worker has it, and only rows with set-aside values get a new
    payload."""
    ids = await add(db, 3)
    assert sorted(await claim(db, "w1")) == sorted(ids)
    taken_over, plain, remarked = ids
    async with db.transaction() as conn:
        await conn.execute(
            deliveries.update().where(deliveries.c.id == taken_over).values(lease_owner="w2")
        )
    payload = {"lead": {"name": "L2"}, "contact": {"name": "C"}, "remarks": ["set aside"]}
    warnings = [{"field": "price", "problem": "refused"}]
    made = [
        store.FormCreated(taken_over, uid="u0", lead_id=10, contact_id=20),
        store.FormCreated(plain, uid="u1", lead_id=11, contact_id=21, contact_matched=True),
        store.FormCreated(
            remarked, uid=None, lead_id=12, contact_id=22, remarked=(payload, warnings)
        ),
    ]
    async with db.transaction() as conn:
        marked = await store.mark_forms_created(conn, made, owner="w1", now=NOW)

    assert marked == {plain, remarked}
    async with db.read() as conn:
        rows = {i: await store.get(conn, i) for i in ids}
    before, one, two = rows[taken_over], rows[plain], rows[remarked]
    assert before is not None
    assert one is not None
    assert two is not None
    assert (before.step, before.amo_lead_id, before.attempts) == ("form", None, 0)
    assert (one.step, one.amo_uid, one.amo_lead_id, one.amo_contact_id) == ("note", "u1", 11, 21)
    assert (one.contact_matched, one.attempts) == (True, 1)
    assert one.payload == {"lead": {"name": "L1"}, "contact": {"name": "C"}}
    assert (two.step, two.amo_uid, two.amo_lead_id, two.contact_matched) == ("note", None, 12, None)
    assert (two.payload, two.warnings) == (payload, warnings)


async def test_states_and_attempts_are_recorded(db: Database) -> None:
    [delivery_id] = await add(db)
    await claim(db, "w1")
    async with db.transaction() as conn:
        await store.mark_sending_form(conn, [delivery_id], owner="w1", now=NOW)
        await store.record_attempt(
            conn,
            delivery_id,
            step="form",
            started_at=NOW,
            duration_ms=120,
            outcome="ok",
            http_status=200,
            detail=None,
        )
        made = store.FormCreated(delivery_id, uid="u1", lead_id=11, contact_id=12)
        await store.mark_forms_created(conn, [made], owner="w1", now=NOW)
        await store.mark_delivered(conn, delivery_id, owner="w1", now=NOW, note_id=13)
    async with db.read() as conn:
        delivery = await store.get(conn, delivery_id)
        attempts = await store.attempts_of(conn, delivery_id)
        counts = await store.count_by_status(conn)
    assert delivery is not None
    assert (delivery.status, delivery.step, delivery.attempts) == ("delivered", "done", 1)
    assert (delivery.amo_uid, delivery.amo_lead_id, delivery.amo_contact_id) == ("u1", 11, 12)
    assert delivery.amo_note_id == 13
    assert not delivery.outcome_unknown
    assert [(a.step, a.outcome, a.http_status, a.duration_ms) for a in attempts] == [
        ("form", "ok", 200, 120)
    ]
    assert counts == {"delivered": 1}


async def test_a_failed_delivery_can_be_sent_again_but_a_delivered_one_cannot(
    db: Database,
) -> None:
    failed_id, delivered_id = await add(db, 2)
    await claim(db, "w1")
    later = NOW + timedelta(hours=1)
    async with db.transaction() as conn:
        await store.mark_failed(
            conn, failed_id, owner="w1", now=NOW, error="rejected", details={"lead.name": "x"}
        )
        await store.mark_delivered(conn, delivered_id, owner="w1", now=NOW, note_id=None)
        assert await store.requeue(conn, failed_id, now=later, give_up_at=later)
        assert not await store.requeue(conn, delivered_id, now=later, give_up_at=later)
    assert await claim(db, "w2", now=later) == [failed_id]


async def test_an_idempotency_key_is_recorded_once_per_api_key(db: Database) -> None:
    expires = NOW + timedelta(hours=24)
    [first, second] = await add(db, 2)
    async with db.transaction() as conn:
        made = await idempotency.claim(
            conn,
            api_key_id="k1",
            key="abc",
            body_hash="h1",
            delivery_id=first,
            now=NOW,
            expires_at=expires,
        )
        again = await idempotency.claim(
            conn,
            api_key_id="k1",
            key="abc",
            body_hash="h2",
            delivery_id=second,
            now=NOW,
            expires_at=expires,
        )
        other_key = await idempotency.claim(
            conn,
            api_key_id="k2",
            key="abc",
            body_hash="h2",
            delivery_id=second,
            now=NOW,
            expires_at=expires,
        )
        await idempotency.save_response(
            conn, api_key_id="k1", key="abc", status_code=202, response={"success": True}
        )
        await idempotency.save_response(
            conn, api_key_id="k1", key="abc", status_code=500, response={"success": False}
        )
        record = await idempotency.get(conn, api_key_id="k1", key="abc")
    assert made is None
    assert other_key is None
    assert again is not None
    assert (again.body_hash, again.delivery_id) == ("h1", first)
    assert record is not None
    assert (record.status_code, record.response) == (202, {"success": True})


async def test_an_expired_idempotency_key_starts_afresh(db: Database) -> None:
    [first, second] = await add(db, 2)
    async with db.transaction() as conn:
        await idempotency.claim(
            conn,
            api_key_id="k1",
            key="abc",
            body_hash="h1",
            delivery_id=first,
            now=NOW,
            expires_at=NOW + timedelta(hours=24),
        )
        later = NOW + timedelta(hours=25)
        reused = await idempotency.claim(
            conn,
            api_key_id="k1",
            key="abc",
            body_hash="h2",
            delivery_id=second,
            now=later,
            expires_at=later + timedelta(hours=24),
        )
        record = await idempotency.get(conn, api_key_id="k1", key="abc")
    assert reused is None
    assert record is not None
    assert record.delivery_id == second


async def test_concurrent_requests_with_one_key_store_one_lead(db: Database) -> None:
    async def attempt(n: int) -> str | None:
        async with db.transaction() as conn:
            delivery_id = uuid.uuid4().hex
            existing = await idempotency.claim(
                conn,
                api_key_id="k1",
                key="same",
                body_hash="h",
                delivery_id=delivery_id,
                now=NOW,
                expires_at=NOW + timedelta(hours=24),
            )
            if existing is not None:
                return None
            await store.insert_delivery(
                conn,
                delivery_id=delivery_id,
                payload={},
                lead_name=f"L{n}",
                contact_name="C",
                api_key_id="k1",
                request_id=None,
                now=NOW,
                give_up_at=NOW + timedelta(hours=72),
            )
            return delivery_id

    stored = [d for d in await asyncio.gather(*(attempt(n) for n in range(8))) if d]
    async with db.read() as conn:
        record = await idempotency.get(conn, api_key_id="k1", key="same")
    assert record is not None
    assert stored == [record.delivery_id]
