"""The relay's tables on SQLite and PostgreSQL: a post stored once per account and body, its
events queued for exactly the subscribers of each, leases, retries, raw bodies erased."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from amogate.storage import migrate
from amogate.storage import relay as store
from amogate.storage import relay_queue as queue
from amogate.storage.db import Database
from amogate.storage.tables import relay_posts
from amogate.worker.retention import RetentionPurge

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await migrate.upgrade(database)
    try:
        yield database
    finally:
        await database.dispose()


def event(code: str = "status_lead", lead_id: str = "1") -> store.NewEvent:
    entity, action = code.split("_")[1], code.split("_")[0]
    return store.NewEvent(code, entity, action, NOW, {"id": lead_id})


async def subscribe(db: Database, events: list[str], account: str = "default") -> str:
    async with db.transaction() as conn:
        await store.ensure_account(conn, account, NOW)
        added = await store.add_subscriber(
            conn,
            account_key=account,
            url="http://r.test/",
            events=events,
            secret="whsec_a",
            now=NOW,
        )
    return added.id


async def post(
    db: Database,
    body: str,
    events: list[store.NewEvent],
    account: str = "default",
) -> store.StoredPost:
    async with db.transaction() as conn:
        return await store.store_post(
            conn, account_key=account, body_hash=f"h-{body}", body=body, events=events, now=NOW
        )


async def test_a_repeated_post_is_stored_once_per_account(db: Database) -> None:
    await subscribe(db, ["status_lead"])
    first = await post(db, "b1", [event()])
    again = await post(db, "b1", [event()])
    other_account = await post(db, "b1", [event()], account="second")
    assert not first.duplicate
    assert len(first.event_ids) == 1
    assert first.deliveries == 1
    assert again.duplicate
    assert again.event_ids == []
    assert again.deliveries == 0
    assert not other_account.duplicate
    async with db.read() as conn:
        assert await store.post_count(conn, "default") == 1
        assert len(await queue.list_deliveries(conn)) == 1


async def test_each_event_is_queued_for_the_subscribers_of_its_code_only(db: Database) -> None:
    status = await subscribe(db, ["status_lead"])
    both = await subscribe(db, ["status_lead", "add_contact"])
    await subscribe(db, ["add_lead"], account="elsewhere")
    stored = await post(db, "b", [event("status_lead"), event("add_contact", "7")])
    assert stored.deliveries == 3
    async with db.read() as conn:
        rows = await queue.list_deliveries(conn)
    pairs = sorted((d.subscriber_id, d.code) for d in rows)
    assert pairs == sorted([(status, "status_lead"), (both, "status_lead"), (both, "add_contact")])
    assert {d.status for d in rows} == {store.QUEUED}


async def test_claimed_deliveries_are_leased_and_not_claimed_twice(db: Database) -> None:
    await subscribe(db, ["status_lead"])
    await post(db, "b", [event(lead_id=str(i)) for i in range(3)])
    lease = NOW + timedelta(seconds=60)
    async with db.transaction() as conn:
        first = await queue.claim_due(conn, owner="w1", now=NOW, lease_until=lease, limit=2)
    async with db.transaction() as conn:
        second = await queue.claim_due(conn, owner="w2", now=NOW, lease_until=lease, limit=10)
    assert len(first) == 2
    assert len(second) == 1
    assert {d.delivery.id for d in first}.isdisjoint(d.delivery.id for d in second)
    assert first[0].url == "http://r.test/"
    assert first[0].secret == "whsec_a"
    assert first[0].event.data["id"] in {"0", "1", "2"}
    # An abandoned lease (the worker died) is claimable again once it runs out.
    async with db.transaction() as conn:
        later = lease + timedelta(seconds=1)
        again = await queue.claim_due(
            conn, owner="w3", now=later, lease_until=later + timedelta(seconds=60), limit=10
        )
    assert len(again) == 3


async def test_a_failed_attempt_is_retried_then_fails_and_can_be_queued_again(
    db: Database,
) -> None:
    await subscribe(db, ["status_lead"])
    await post(db, "b", [event()])
    async with db.transaction() as conn:
        (due,) = await queue.claim_due(
            conn, owner="w", now=NOW, lease_until=NOW + timedelta(seconds=60), limit=5
        )
        assert await queue.mark_attempt_failed(
            conn,
            due.delivery.id,
            owner="w",
            now=NOW,
            retry_at=NOW + timedelta(seconds=5),
            status=503,
            error="HTTP 503",
        )
        assert (
            await queue.claim_due(
                conn, owner="w", now=NOW, lease_until=NOW + timedelta(seconds=60), limit=5
            )
            == []
        )
        later = NOW + timedelta(seconds=6)
        (due,) = await queue.claim_due(
            conn, owner="w", now=later, lease_until=later + timedelta(seconds=60), limit=5
        )
        assert due.delivery.attempts == 1
        assert await queue.mark_attempt_failed(
            conn,
            due.delivery.id,
            owner="w",
            now=later,
            retry_at=None,
            status=None,
            error="gave up",
        )
    async with db.read() as conn:
        (failed,) = await queue.list_deliveries(conn, status=queue.FAILED)
    assert failed.attempts == 2
    assert failed.last_error == "gave up"
    async with db.transaction() as conn:
        assert await queue.retry(conn, now=NOW, keep_trying=timedelta(hours=72)) == 1
        (queued,) = await queue.list_deliveries(conn, status=store.QUEUED)
    assert queued.give_up_at == NOW + timedelta(hours=72)


async def test_removing_a_subscriber_removes_its_deliveries(db: Database) -> None:
    gone = await subscribe(db, ["status_lead"])
    kept = await subscribe(db, ["status_lead"])
    await post(db, "b", [event()])
    async with db.transaction() as conn:
        assert await store.remove_subscriber(conn, gone)
        assert not await store.remove_subscriber(conn, gone)
    async with db.read() as conn:
        assert [d.subscriber_id for d in await queue.list_deliveries(conn)] == [kept]


async def test_the_inbound_secret_is_made_once_per_account(db: Database) -> None:
    async with db.transaction() as conn:
        first = await store.ensure_account(conn, "default", NOW)
        again = await store.ensure_account(conn, "default", NOW)
        other = await store.ensure_account(conn, "shop", NOW)
    assert first.inbound_secret == again.inbound_secret != other.inbound_secret
    assert len(first.inbound_secret) >= 32


async def test_raw_bodies_are_erased_after_a_week_and_a_repeat_is_still_recognised(
    db: Database,
) -> None:
    async with db.transaction() as conn:
        await store.store_post(
            conn,
            account_key="default",
            body_hash="old",
            body="leads[add][0][id]=1",
            events=[event()],
            now=NOW - timedelta(days=8),
        )
        await store.store_post(
            conn,
            account_key="default",
            body_hash="new",
            body="leads[add][0][id]=2",
            events=[event()],
            now=NOW - timedelta(days=6),
        )
    purge = RetentionPurge(db, retention=timedelta(days=30), interval_s=3600, clock=lambda: NOW)
    report = await purge.run_once()
    assert report.webhook_bodies == 1
    async with db.read() as conn:
        rows = {r.body_hash: r.body for r in await conn.execute(select(relay_posts))}
    assert rows == {"old": None, "new": "leads[add][0][id]=2"}
    async with db.transaction() as conn:
        repeat = await store.store_post(
            conn, account_key="default", body_hash="old", body="x", events=[event()], now=NOW
        )
    assert repeat.duplicate


async def test_old_events_are_deleted_after_the_retention_period_unless_still_waiting(
    db: Database,
) -> None:
    await subscribe(db, ["status_lead"])
    old = NOW - timedelta(days=31)
    async with db.transaction() as conn:
        await store.offer_events(conn, "default", [event(lead_id="sent")], now=old)
        await store.offer_events(conn, "default", [event(lead_id="waiting")], now=old)
        await store.offer_events(conn, "default", [event(lead_id="recent")], now=NOW)
        (sent, waiting) = await queue.claim_due(
            conn, owner="w", now=NOW, lease_until=NOW + timedelta(seconds=60), limit=2
        )
        assert sent.event.data["id"] == "sent"
        await queue.mark_delivered(conn, sent.delivery.id, owner="w", now=NOW, status=200)
        await queue.release(conn, [waiting.delivery.id], owner="w", now=NOW)
    purge = RetentionPurge(db, retention=timedelta(days=30), interval_s=3600, clock=lambda: NOW)
    assert (await purge.run_once()).webhook_events == 1
    async with db.read() as conn:
        left = sorted(e.data["id"] for e in await store.recent_events(conn, limit=10))
        deliveries = await queue.list_deliveries(conn)
    assert left == ["recent", "waiting"]
    assert len(deliveries) == 2
