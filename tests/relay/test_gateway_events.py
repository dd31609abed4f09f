"""amogate's own events reach their subscribers like amoCRM's: a lead delivery that ends
`failed` and an account whose tokens amoCRM will not renew are queued, in the same transaction
as what they report, for the subscribers of `gateway.delivery_failed` /
`gateway.reauthorization_needed` (and for no one else)."""

from __future__ import annotations

import pytest

from amogate.amocrm.errors import AmoAuthError
from amogate.app_state import state_of
from amogate.relay import subscribers
from amogate.settings import Settings
from amogate.storage import accounts
from amogate.storage import relay as store
from amogate.storage import relay_queue as queue
from amogate.storage.db import Database
from tests.leads.helpers import simple_lead
from tests.support.gateway import Harness, connected_gateway
from tests.worker.test_delivery import QUEUE_ONLY, deliverer
from tests.worker.test_delivery import queue as queue_leads


async def events_of(db: Database, code: str) -> list[store.Event]:
    async with db.read() as conn:
        return [e for e in await store.recent_events(conn, limit=50) if e.code == code]


async def subscribe_all(db: Database) -> tuple[str, str]:
    gateway = await subscribers.add(
        db,
        "http://ops.test/hook",
        account_key="default",
        event_list="gateway.delivery_failed,gateway.reauthorization_needed",
    )
    amo_only = await subscribers.add(
        db, "http://shop.test/hook", account_key="default", event_list="status_lead"
    )
    return gateway.subscriber.id, amo_only.subscriber.id


async def test_a_failed_lead_delivery_is_offered_as_gateway_delivery_failed(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, **QUEUE_ONLY) as h:
        db: Database = state_of(h.app).running().database
        ops, _ = await subscribe_all(db)
        ids = await queue_leads(h, [simple_lead(1), simple_lead(2)], api_headers)
        await h.fault("400", count=2, path_prefix="/api/v4/leads/unsorted/forms")
        await deliverer(h).run_once()
        (event,) = await events_of(db, "gateway.delivery_failed")
        assert event.data["delivery_id"] in ids
        assert "amoCRM rejected" in event.data["reason"]
        assert (event.entity, event.action, event.account_key) == (
            "gateway",
            "delivery_failed",
            "default",
        )
        async with db.read() as conn:
            queued = await queue.list_deliveries(conn)
        assert [(d.subscriber_id, d.code) for d in queued] == [(ops, "gateway.delivery_failed")]


async def test_an_account_needing_reauthorization_is_offered_once(settings: Settings) -> None:
    async with connected_gateway(settings) as h:
        db: Database = state_of(h.app).running().database
        ops, _ = await subscribe_all(db)
        await revoke(h)
        with pytest.raises(AmoAuthError):
            await (await h.amo.client()).get_account()
        (event,) = await events_of(db, "gateway.reauthorization_needed")
        assert event.data["account"] == "default"
        assert event.data["reason"] == "Token has been revoked"
        assert "reconnect" in event.data["action"]
        async with db.read() as conn:
            queued = await queue.list_deliveries(conn)
        assert [(d.subscriber_id, d.code) for d in queued] == [
            (ops, "gateway.reauthorization_needed")
        ]


async def revoke(h: Harness) -> None:
    """An old copy of the token pair comes back after a refresh: amoCRM refuses to renew it."""
    stale = await h.amo.tokens.status()
    assert stale is not None
    assert stale.access_token
    assert stale.refresh_token
    await h.amo.tokens.refresh_now()
    await (await h.amo.client()).get_account()
    async with h.amo.database.transaction() as conn:
        await accounts.save_tokens(
            conn,
            "default",
            access_token=stale.access_token,
            refresh_token=stale.refresh_token,
            expires_at=stale.access_expires_at,
            kind=accounts.OAUTH,
            now=stale.updated_at,
        )
    h.amo.tokens.forget_cache()
