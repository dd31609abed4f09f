"""The admin pages against a gateway connected to the amoCRM sandbox (in-process)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from amogate.amocrm.sandbox.state import FIRST_IDS
from amogate.app_state import state_of
from amogate.settings import Settings
from amogate.storage import deliveries as store
from tests.support.gateway import Harness, connected_gateway
from tests.web.helpers import ADMIN_PASSWORD, form_token, sign_in

LEADS = "/api/v1/leads/unsorted"
FAST: dict[str, Any] = {
    "admin_password": ADMIN_PASSWORD,
    "lead_sync_timeout": 5.0,
    "delivery_retry_base_seconds": 0.2,
}
# The first tag the sandbox creates gets this id: a lead naming it before it exists is refused.
FIRST_TAG_ID = FIRST_IDS["tag"]


@asynccontextmanager
async def admin_gateway(settings: Settings) -> AsyncIterator[Harness]:
    async with connected_gateway(settings, background=True, **FAST) as h:
        assert (await sign_in(h.gateway)).status_code == 303
        yield h


def lead(name: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "lead": {"name": name, "price": 1000},
        "contact": {
            "name": "Alisher Navoi",
            "phone": "+998901234567",
            "email": "alisher@example.com",
        },
        "comment": "Mijoz maxsulot haqida so'radi",
    }
    body["lead"].update(extra)
    return body


async def wait_for_status(h: Harness, delivery_id: str, wanted: str, within: float = 15) -> None:
    deadline = time.monotonic() + within
    while True:
        async with state_of(h.app).running().database.read() as conn:
            row = await store.get(conn, delivery_id)
        assert row is not None
        if row.status == wanted:
            return
        assert time.monotonic() < deadline, f"still {row.status}"
        await asyncio.sleep(0.1)


async def test_the_overview_shows_the_connected_account_and_the_last_days_deliveries(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with admin_gateway(settings) as h:
        sent = await h.gateway.post(LEADS, json=lead("Overview lead"), headers=api_headers)
        assert sent.status_code == 200, sent.text
        page = await h.gateway.get("/admin")
        assert page.status_code == 200
        assert re.search(r'id="account-name">Sandbox savdo<', page.text)
        assert re.search(r'id="connection-state">Connected<', page.text)
        assert "Reconnect amoCRM" in page.text
        assert re.search(r'data-state="delivered"><span class="n">1</span>', page.text)
        assert "none: every lead is delivered" in page.text


async def test_a_lead_sent_through_the_api_is_listed_and_its_detail_masks_the_contact(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with admin_gateway(settings) as h:
        # a tag id amoCRM does not have: the lead arrives without it, with a warning
        body = lead("Yangi mijoz", tags=[{"id": FIRST_TAG_ID}])
        sent = await h.gateway.post(LEADS, json=body, headers=api_headers)
        assert sent.status_code == 200, sent.text
        data = sent.json()["data"]
        listing = await h.gateway.get("/admin/deliveries")
        assert f'data-id="{data["delivery_id"]}"' in listing.text
        assert "Yangi mijoz" in listing.text
        detail = await h.gateway.get(f"/admin/deliveries/{data['delivery_id']}")
        assert detail.status_code == 200
        assert "+998901234567" not in detail.text
        assert "alisher@example.com" not in detail.text
        assert "4567" in detail.text
        assert "@example.com" in detail.text
        assert f"/leads/detail/{data['lead_id']}" in detail.text
        assert re.search(r'id="delivery-state">delivered<', detail.text)
        assert 'class="outcome-ok"' in detail.text
        assert 'id="warnings"' in detail.text
        assert "<code>lead.tags.0</code>: amoCRM refused it: " in detail.text


async def test_a_delivery_amocrm_refused_is_retried_from_the_page_once_the_cause_is_fixed(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with admin_gateway(settings) as h:
        await h.fault("400", count=1, path_prefix="/api/v4/leads/unsorted/forms")
        refused = await h.gateway.post(LEADS, json=lead("Refused lead"), headers=api_headers)
        assert refused.status_code == 422, refused.text
        [failed] = (await h.gateway.get("/admin/deliveries?state=failed")).text.split('data-id="')[
            1:
        ]
        delivery_id = failed.split('"', 1)[0]
        detail = await h.gateway.get(f"/admin/deliveries/{delivery_id}")
        assert re.search(r'id="delivery-state">failed<', detail.text)
        assert "amoCRM rejected the request (HTTP 400)" in detail.text

        # amoCRM takes leads again (the fault was for one request); the operator presses Retry.
        token = await form_token(h.gateway, f"/admin/deliveries/{delivery_id}")
        retried = await h.gateway.post(
            f"/admin/deliveries/{delivery_id}/retry", data={"csrf": token}
        )
        assert retried.status_code == 303
        await wait_for_status(h, delivery_id, "delivered")
        detail = await h.gateway.get(f"/admin/deliveries/{delivery_id}")
        assert re.search(r'id="delivery-state">delivered<', detail.text)
        assert detail.text.count('class="outcome-permanent"') == 1


async def test_retry_all_failed_requeues_every_failed_delivery(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with admin_gateway(settings) as h:
        await h.fault("400", count=2, path_prefix="/api/v4/leads/unsorted/forms")
        for n in range(2):
            body = lead(f"Refused {n}")
            assert (await h.gateway.post(LEADS, json=body, headers=api_headers)).status_code == 422
        async with state_of(h.app).running().database.read() as conn:
            failed = [d.id for d in await store.list_deliveries(conn, status=store.FAILED)]
        assert len(failed) == 2
        token = await form_token(h.gateway, "/admin/deliveries")
        response = await h.gateway.post("/admin/deliveries/retry-failed", data={"csrf": token})
        assert response.headers["location"] == "/admin/deliveries?done=requeued_many&count=2"
        page = await h.gateway.get(response.headers["location"])
        assert "2 failed deliveries are queued again." in page.text
        # Not only the message: both leads go out again and now reach amoCRM.
        for delivery_id in failed:
            await wait_for_status(h, delivery_id, "delivered")
        names = {item["name"] for item in await _api_leads(h)}
        assert {"Refused 0", "Refused 1"} <= names


async def _api_leads(h: Harness) -> list[dict[str, Any]]:
    response = await h.sandbox_api("GET", "/api/v4/leads?limit=250")
    response.raise_for_status()
    leads: list[dict[str, Any]] = response.json()["_embedded"]["leads"]
    return leads


async def test_a_delivered_lead_cannot_be_sent_twice_from_the_page(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with admin_gateway(settings) as h:
        data = (await h.gateway.post(LEADS, json=lead("Once"), headers=api_headers)).json()["data"]
        token = await form_token(h.gateway, "/admin/deliveries")
        response = await h.gateway.post(
            f"/admin/deliveries/{data['delivery_id']}/retry", data={"csrf": token}
        )
        page = await h.gateway.get(response.headers["location"])
        assert "cannot be retried" in page.text
        assert 'id="retry"' not in page.text


async def test_a_key_created_on_the_page_is_shown_once_works_and_stops_when_revoked(
    settings: Settings,
) -> None:
    async with admin_gateway(settings) as h:
        token = await form_token(h.gateway, "/admin/keys")
        created = await h.gateway.post(
            "/admin/keys",
            data={"csrf": token, "name": "landing", "scopes": ["info:read"], "rate": "30"},
        )
        assert created.status_code == 201
        found = re.search(r'value="(amg_[^"]+)" id="new-key-value"', created.text)
        assert found is not None, created.text
        key = found.group(1)
        assert (
            await h.gateway.get("/api/v1/info/account", headers={"X-API-KEY": key})
        ).status_code == 200

        listing = await h.gateway.get("/admin/keys")
        assert key not in listing.text
        [key_id] = re.findall(r'action="/admin/keys/([0-9a-f]+)/revoke"', listing.text)
        revoked = await h.gateway.post(
            f"/admin/keys/{key_id}/revoke",
            data={"csrf": await form_token(h.gateway, "/admin/keys")},
        )
        page = await h.gateway.get(revoked.headers["location"])
        assert "The key landing is revoked." in page.text
        assert (
            await h.gateway.get("/api/v1/info/account", headers={"X-API-KEY": key})
        ).status_code == 401


async def test_a_key_with_a_bad_site_or_a_taken_name_is_not_created(
    settings: Settings, signed_in: httpx.AsyncClient
) -> None:
    token = await form_token(signed_in, "/admin/keys")
    bad = await signed_in.post(
        "/admin/keys",
        data={"csrf": token, "name": "shop", "scopes": "leads:write", "origins": "shop.uz/x"},
    )
    assert bad.status_code == 422
    assert "shop.uz/x is not a site address" in bad.text
    ok = await signed_in.post(
        "/admin/keys",
        data={"csrf": token, "name": "shop", "scopes": "leads:write", "origins": "https://shop.uz"},
    )
    assert ok.status_code == 201
    again = await signed_in.post(
        "/admin/keys", data={"csrf": token, "name": "shop", "scopes": "leads:write"}
    )
    assert again.status_code == 409
    assert "already exists" in again.text
