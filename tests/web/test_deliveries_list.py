"""The deliveries list: filters by state, day and name, pages of 25, newest first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI

from amogate.app_state import state_of
from amogate.storage import deliveries as store
from amogate.storage.db import Database
from amogate.web.masking import mask_email, mask_payload, mask_phone

DAY = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


async def _store(app: FastAPI, n: int, *, lead: str, contact: str, at: datetime) -> None:
    database = state_of(app).running().database
    assert isinstance(database, Database)
    async with database.transaction() as conn:
        await store.insert_delivery(
            conn,
            delivery_id=f"d{n:04d}",
            payload={"lead": {"name": lead}, "contact": {"name": contact}},
            lead_name=lead,
            contact_name=contact,
            api_key_id=None,
            request_id=None,
            now=at,
            give_up_at=at + timedelta(hours=72),
        )


def _ids(html: str) -> list[str]:
    return [part.split('"', 1)[0] for part in html.split('data-id="')[1:]]


async def test_deliveries_are_paged_newest_first(
    admin_app: FastAPI, signed_in: httpx.AsyncClient
) -> None:
    for n in range(30):
        await _store(
            admin_app, n, lead=f"Lead {n}", contact="Client", at=DAY + timedelta(minutes=n)
        )
    first = await signed_in.get("/admin/deliveries")
    assert _ids(first.text) == [f"d{n:04d}" for n in range(29, 4, -1)]
    assert "30 found" in first.text
    assert "Page 1 of 2" in first.text
    second = await signed_in.get("/admin/deliveries?page=2")
    assert _ids(second.text) == [f"d{n:04d}" for n in range(4, -1, -1)]


async def test_deliveries_are_filtered_by_name_day_and_state(
    admin_app: FastAPI, signed_in: httpx.AsyncClient
) -> None:
    await _store(admin_app, 1, lead="Kitchen order", contact="Alisher", at=DAY)
    await _store(admin_app, 2, lead="Sofa order", contact="Bobur", at=DAY + timedelta(days=1))
    await _store(admin_app, 3, lead="100% sale", contact="Alisher", at=DAY + timedelta(days=2))
    assert _ids((await signed_in.get("/admin/deliveries?q=alisher")).text) == ["d0003", "d0001"]
    assert _ids((await signed_in.get("/admin/deliveries?q=sofa")).text) == ["d0002"]
    assert _ids((await signed_in.get("/admin/deliveries?q=100%25")).text) == ["d0003"]
    assert _ids((await signed_in.get("/admin/deliveries?q=%25")).text) == ["d0003"]
    by_day = await signed_in.get("/admin/deliveries?from=2026-03-11&to=2026-03-11")
    assert _ids(by_day.text) == ["d0002"]
    assert _ids((await signed_in.get("/admin/deliveries?state=queued")).text) == [
        "d0003",
        "d0002",
        "d0001",
    ]
    empty = await signed_in.get("/admin/deliveries?state=failed")
    assert _ids(empty.text) == []
    assert "No deliveries match." in empty.text


async def test_an_unknown_delivery_is_a_404_page(signed_in: httpx.AsyncClient) -> None:
    response = await signed_in.get("/admin/deliveries/nope")
    assert response.status_code == 404
    assert "Not found." in response.text


async def test_the_overview_of_a_gateway_without_amocrm_says_what_to_configure(
    admin_app: FastAPI, signed_in: httpx.AsyncClient
) -> None:
    await _store(
        admin_app, 1, lead="Waiting", contact="C", at=datetime.now(UTC) - timedelta(hours=2)
    )
    page = await signed_in.get("/admin")
    assert "amoCRM is not configured" in page.text
    assert 'data-state="queued"><span class="n">1</span>' in page.text
    assert "waiting for 2 h" in page.text


def test_phones_keep_only_their_last_four_digits() -> None:
    assert mask_phone("+998901234567") == "+••••••••4567"
    assert mask_phone("90 123-45-67") == "•• •••-45-67"


def test_emails_keep_their_first_letters_and_domain() -> None:
    assert mask_email("alisher@example.com") == "al•••@example.com"
    assert mask_email("bo@x.uz") == "b•••@x.uz"


def test_every_phone_and_email_in_a_request_is_masked_at_any_depth() -> None:
    payload = {
        "contact": {
            "name": "Alisher",
            "phone": "+998901234567",
            "phones": ["+998907654321"],
            "emails": ["a.navoi@example.com"],
            "custom_fields": [{"field_code": "PHONE", "value": "+998931112233"}],
        },
        "lead": {"name": "Order 1234567"},
    }
    masked = mask_payload(payload)
    assert masked["contact"]["phone"] == "+••••••••4567"
    assert masked["contact"]["phones"] == ["+••••••••4321"]
    assert masked["contact"]["emails"] == ["a.•••@example.com"]
    assert masked["contact"]["custom_fields"][0]["value"] == "+••••••••2233"
    assert masked["lead"] == {"name": "Order 1234567"}
    assert masked["contact"]["name"] == "Alisher"
