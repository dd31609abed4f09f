"""Relay deliveries sent to a real local HTTP receiver: signed per Standard Webhooks, retried
with backoff on errors and timeouts with the same webhook-id, failed after the give-up time,
and never more than the concurrency limit in flight for one subscriber."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from amogate.relay import subscribers
from amogate.relay.sender import RelaySender
from amogate.storage import migrate
from amogate.storage import relay as store
from amogate.storage import relay_queue as queue
from amogate.storage.db import Database
from amogate.worker.retry import RetryPolicy
from tests.sandbox.receiver import Receiver

POLICY = RetryPolicy(base_delay=0.2, max_delay=0.5, jitter=0.0)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await migrate.upgrade(database)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


async def subscribe(db: Database, url: str) -> subscribers.Added:
    return await subscribers.add(db, url, account_key="default", event_list="status_lead")


async def offer(db: Database, count: int = 1, keep_trying: timedelta = timedelta(hours=72)) -> None:
    now = datetime.now(UTC)
    events = [
        store.NewEvent("status_lead", "lead", "status", now, {"id": str(i), "name": "Ариф"})
        for i in range(count)
    ]
    async with db.transaction() as conn:
        await store.offer_events(conn, "default", events, now=now, keep_trying=keep_trying)


async def statuses(db: Database) -> list[str]:
    async with db.read() as conn:
        return [d.status for d in await queue.list_deliveries(conn)]


async def run_until(sender: RelaySender, db: Database, done: set[str], seconds: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while set(await statuses(db)) - done:
        assert asyncio.get_running_loop().time() < deadline, await statuses(db)
        await sender.dispatch()
        await sender.settle()
        await asyncio.sleep(0.05)


async def test_an_event_arrives_as_signed_json_and_is_delivered(
    db: Database, receiver: Receiver
) -> None:
    added = await subscribe(db, receiver.url)
    await offer(db)
    sender = RelaySender(db, POLICY)
    try:
        assert await sender.dispatch() == 1
        await sender.settle()
    finally:
        await sender.close()
    (post,) = receiver.received
    headers = {k.lower(): v for k, v in post.headers.items()}
    assert headers["content-type"] == "application/json"
    event = Webhook(added.secret).verify(post.body, headers)
    assert event["id"] == headers["webhook-id"]
    assert event["id"].startswith("evt_")
    assert set(event) == {"id", "type", "account", "entity", "action", "occurred_at", "data"}
    assert (event["type"], event["account"], event["entity"], event["action"]) == (
        "status_lead",
        "default",
        "lead",
        "status",
    )
    assert event["data"] == {"id": "0", "name": "Ариф"}
    assert "Ариф".encode() in post.body  # UTF-8, not escaped
    assert await statuses(db) == [queue.DELIVERED]


async def test_errors_and_timeouts_are_retried_with_the_same_webhook_id(
    db: Database, receiver: Receiver
) -> None:
    await subscribe(db, receiver.url)
    await offer(db)
    receiver.script.extend([500, 404])
    sender = RelaySender(db, POLICY, timeout_s=0.5)
    try:
        await sender.dispatch()
        await sender.settle()
        async with db.read() as conn:
            (waiting,) = await queue.list_deliveries(conn)
        assert waiting.status == queue.RETRYING
        assert waiting.last_status == 500
        assert waiting.next_at > waiting.updated_at
        await run_until(sender, db, {queue.DELIVERED})
    finally:
        await sender.close()
    ids = {post.headers["webhook-id"] for post in receiver.received}
    assert len(receiver.received) == 3
    assert len(ids) == 1
    async with db.read() as conn:
        (done,) = await queue.list_deliveries(conn)
    assert done.attempts == 3


async def test_a_slow_receiver_is_a_timeout_and_retried(db: Database, receiver: Receiver) -> None:
    await subscribe(db, receiver.url)
    await offer(db)
    receiver.delay_s = 1.0
    sender = RelaySender(db, POLICY, timeout_s=0.3)
    try:
        await sender.dispatch()
        await sender.settle()
    finally:
        await sender.close()
    async with db.read() as conn:
        (waiting,) = await queue.list_deliveries(conn)
    assert waiting.status == queue.RETRYING
    assert waiting.last_error == "no answer within 0.3 s"


async def test_after_the_give_up_time_a_failing_delivery_fails(db: Database) -> None:
    await subscribe(db, "http://127.0.0.1:9/nothing-listens-here")
    await offer(db, keep_trying=timedelta(seconds=0))
    sender = RelaySender(db, POLICY)
    try:
        await sender.dispatch()
        await sender.settle()
    finally:
        await sender.close()
    async with db.read() as conn:
        (failed,) = await queue.list_deliveries(conn)
    assert failed.status == queue.FAILED
    assert failed.last_error is not None
    assert failed.last_error.startswith("gave up after 1 attempts; last: could not connect")


async def test_one_subscriber_never_has_more_than_the_limit_in_flight_nor_holds_others(
    db: Database, receiver: Receiver
) -> None:
    with Receiver() as fast:
        await subscribe(db, receiver.url)
        await subscribe(db, fast.url)
        await offer(db, count=6)
        receiver.hold.clear()  # the first subscriber answers nothing until released
        sender = RelaySender(db, POLICY, concurrency=2, timeout_s=10)
        try:
            assert await sender.dispatch() == 4  # 2 for the held one, 2 for the fast one
            await fast.arrived(2)
            await asyncio.sleep(0.2)
            assert len(receiver.received) == 2
            for _ in range(20):
                await sender.dispatch()
                await asyncio.sleep(0.05)
            assert len(fast.received) == 6  # the held subscriber did not hold it back
            assert len(receiver.received) == 2
            receiver.hold.set()
            await run_until(sender, db, {queue.DELIVERED})
        finally:
            receiver.hold.set()
            await sender.close()
    assert len(receiver.received) == 6
    assert sorted(json.loads(p.body)["data"]["id"] for p in receiver.received) == [
        str(i) for i in range(6)
    ]
