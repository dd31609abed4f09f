"""Registering the inbound URL with the sandbox (amoCRM) and keeping it registered: connect
asks for the union of the subscribers' amoCRM events; a webhook amoCRM disabled is found by the
check, offered as gateway.webhook_disabled, saved again, and shown by /health/ready and
/metrics."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from amogate.amocrm.sandbox.seed import MAIN_PIPELINE_ID
from amogate.app_state import state_of
from amogate.relay import registration, subscribers
from amogate.settings import Settings
from amogate.storage import relay as store
from amogate.storage import relay_queue as queue
from amogate.storage.db import Database
from tests.support.gateway import Harness, connected_gateway

# Nothing listens on port 9: every webhook the sandbox sends to amogate fails at once.
PUBLIC_URL = "http://127.0.0.1:9"
SECOND_STAGE = 71_000_013


async def amo_webhooks(h: Harness) -> list[dict[str, Any]]:
    answer = await h.sandbox_api("GET", "/api/v4/webhooks")
    if answer.status_code == 204:
        return []
    hooks: list[dict[str, Any]] = answer.json()["_embedded"]["webhooks"]
    return hooks


async def relay_account(db: Database) -> store.RelayAccount:
    async with db.read() as conn:
        account = await store.get_account(conn, "default")
    assert account is not None
    return account


async def test_connect_registers_the_union_of_amocrm_events_and_not_gateway_ones(
    settings: Settings,
) -> None:
    async with connected_gateway(settings, public_url=PUBLIC_URL + "/") as h:
        db: Database = state_of(h.app).running().database
        gw: Settings = state_of(h.app).settings
        await subscribers.add(
            db,
            "http://a.test/",
            account_key="default",
            event_list="status_lead,gateway.delivery_failed",
        )
        await subscribers.add(
            db, "http://b.test/", account_key="default", event_list="add_contact,status_lead"
        )
        done = await registration.connect(h.amo, db, gw, "default")
        (hook,) = await amo_webhooks(h)
        account = await relay_account(db)
        assert done.events == ["add_contact", "status_lead"]
        assert sorted(hook["settings"]) == ["add_contact", "status_lead"]
        assert hook["destination"] == (
            f"{PUBLIC_URL}/webhooks/amocrm/default/{account.inbound_secret}"
        )
        assert done.public_prefix == f"{PUBLIC_URL}/webhooks/amocrm/default/"
        assert account.registered_events == ["add_contact", "status_lead"]
        assert account.amo_webhook_id == hook["id"]


async def test_connect_needs_public_url_and_an_amocrm_event(settings: Settings) -> None:
    async with connected_gateway(settings) as h:
        db: Database = state_of(h.app).running().database
        with pytest.raises(registration.RegistrationError, match="PUBLIC_URL is not set"):
            await registration.connect(h.amo, db, state_of(h.app).settings, "default")
        gw = state_of(h.app).settings.model_copy(update={"public_url": PUBLIC_URL})
        await subscribers.add(
            db, "http://a.test/", account_key="default", event_list="gateway.delivery_failed"
        )
        with pytest.raises(registration.RegistrationError, match="wants an amoCRM event"):
            await registration.connect(h.amo, db, gw, "default")
        assert await amo_webhooks(h) == []


async def test_a_webhook_amocrm_disabled_is_reported_and_registered_again(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, public_url=PUBLIC_URL) as h:
        db: Database = state_of(h.app).running().database
        gw: Settings = state_of(h.app).settings
        ops = await subscribers.add(
            db, "http://ops.test/", account_key="default", event_list="gateway.webhook_disabled"
        )
        await subscribers.add(
            db, "http://shop.test/", account_key="default", event_list="status_lead"
        )
        await registration.connect(h.amo, db, gw, "default")
        # amoCRM disables a webhook after more than N failures: here, after the first one.
        await h.sandbox.patch("/_sandbox/settings", json={"webhook_disable_failures": 0})
        created = await h.sandbox_api(
            "POST", "/api/v4/leads", json=[{"name": "Buyurtma", "pipeline_id": MAIN_PIPELINE_ID}]
        )
        lead_id = created.json()["_embedded"]["leads"][0]["id"]
        await h.sandbox_api("PATCH", f"/api/v4/leads/{lead_id}", json={"status_id": SECOND_STAGE})
        for _ in range(100):
            if (await amo_webhooks(h))[0]["disabled"]:
                break
            await asyncio.sleep(0.02)
        assert (await amo_webhooks(h))[0]["disabled"] is True

        check = registration.WebhookCheck(db, gw, lambda key: h.amo, interval_s=300)
        (result,) = await check.run_once()

        assert result.state == "reenabled"
        assert (await amo_webhooks(h))[0]["disabled"] is False
        account = await relay_account(db)
        assert account.reenabled_count == 1
        assert account.amo_disabled is False
        async with db.read() as conn:
            (event,) = [
                e for e in await store.recent_events(conn) if e.code == "gateway.webhook_disabled"
            ]
            queued = await queue.list_deliveries(conn)
        assert event.data == {
            "account": "default",
            "reason": "disabled by amoCRM",
            "events": ["status_lead"],
        }
        assert [d.subscriber_id for d in queued] == [ops.subscriber.id]
        assert not check.due()
        ready = (await h.gateway.get("/health/ready")).json()
        assert ready["data"]["webhooks"] == "ok"
        metrics = (await h.gateway.get("/metrics", headers=api_headers)).text
        assert 'amogate_amocrm_webhook_reenabled_total{account="default"} 1.0' in metrics
        assert 'amogate_amocrm_webhook_disabled{account="default"} 0.0' in metrics


async def test_a_disabled_webhook_that_cannot_be_saved_again_shows_in_ready(
    settings: Settings,
) -> None:
    async with connected_gateway(settings, public_url=PUBLIC_URL) as h:
        db: Database = state_of(h.app).running().database
        gw: Settings = state_of(h.app).settings
        await subscribers.add(
            db, "http://shop.test/", account_key="default", event_list="status_lead"
        )
        await registration.connect(h.amo, db, gw, "default")
        await h.fault("500", path_prefix="/api/v4/webhooks")
        check = registration.WebhookCheck(db, gw, lambda key: h.amo, interval_s=300)
        (result,) = await check.run_once()
        assert result.state == "error"
        ready = (await h.gateway.get("/health/ready")).json()
        assert ready["data"]["webhooks"].startswith("default: could not check amoCRM's webhook")


async def test_the_check_registers_the_events_subscribers_added_since(settings: Settings) -> None:
    async with connected_gateway(settings, public_url=PUBLIC_URL) as h:
        db: Database = state_of(h.app).running().database
        gw: Settings = state_of(h.app).settings
        await subscribers.add(
            db, "http://shop.test/", account_key="default", event_list="status_lead"
        )
        await registration.connect(h.amo, db, gw, "default")
        check = registration.WebhookCheck(db, gw, lambda key: h.amo, interval_s=300)
        assert [r.state for r in await check.run_once()] == ["ok"]
        await subscribers.add(db, "http://bot.test/", account_key="default", event_list="note_lead")
        (result,) = await check.run_once()
        (hook,) = await amo_webhooks(h)
        assert result.state == "updated"
        assert sorted(hook["settings"]) == ["note_lead", "status_lead"]
        assert (await relay_account(db)).registered_events == ["note_lead", "status_lead"]
