"""Leads through the gateway's API and its delivery worker, to the amoCRM sandbox over real
HTTP: a returning customer's lead goes to the contact amoCRM already has, which keeps its
name and values; one new person gets one contact; matching off restores a contact per lead."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from amogate.amocrm.models import contact_card
from amogate.amocrm.sandbox.runner import SandboxServer
from amogate.contacts.index import ContactIndex
from amogate.leads.fields import AppFields
from amogate.settings import Settings
from amogate.storage import deliveries as store
from amogate.worker.deliver import Deliverer
from amogate.worker.worker import deliverer_from
from tests.leads.helpers import URL, api_json, delivery
from tests.support.gateway import Harness, connected_gateway

JSON = dict[str, Any]
QUEUE_ONLY: dict[str, Any] = {"lead_sync_timeout": 0, "delivery_retry_base_seconds": 0.2}


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(rate_limit=0) as running:
        yield running


@pytest.fixture
def fresh(server: SandboxServer) -> SandboxServer:
    httpx.post(f"{server.url}/_sandbox/reset", timeout=10).raise_for_status()
    return server


def worker(h: Harness, **overrides: Any) -> Deliverer:
    made = deliverer_from(
        h.app.state.settings, h.app.state.database, h.amo, AppFields(h.app.state), None
    )
    if made.contacts is not None:
        # every batch sees the contacts made a moment ago
        made.contacts.index_factory = lambda: ContactIndex(refresh_interval=0)
    for key, value in overrides.items():
        setattr(made, key, value)
    return made


async def queue(h: Harness, bodies: list[JSON], headers: dict[str, str]) -> list[str]:
    answers = await asyncio.gather(*(h.gateway.post(URL, json=b, headers=headers) for b in bodies))
    for answer in answers:
        assert answer.status_code == 202, answer.text
    return [a.json()["data"]["delivery_id"] for a in answers]


async def drain(h: Harness, *workers: Deliverer) -> None:
    """Run the workers side by side until every lead is delivered or failed."""
    try:
        for _ in range(50):
            await asyncio.gather(*(w.run_once() for w in workers))
            async with h.app.state.database.read() as conn:
                counts = await store.count_by_status(conn)
            if counts.get(store.QUEUED, 0) + counts.get(store.RETRYING, 0) == 0:
                return
            await asyncio.sleep(0.3)
        raise AssertionError(f"not drained: {counts}")
    finally:
        for w in workers:
            await w.close()


async def make_contact(h: Harness, name: str, *, phone: str = "", email: str = "") -> JSON:
    values: list[JSON] = []
    if phone:
        values.append({"field_code": "PHONE", "values": [{"value": phone, "enum_code": "MOB"}]})
    if email:
        values.append({"field_code": "EMAIL", "values": [{"value": email}]})
    response = await h.sandbox_api(
        "POST", "/api/v4/contacts", json=[{"name": name, "custom_fields_values": values}]
    )
    response.raise_for_status()
    contact_id = response.json()["_embedded"]["contacts"][0]["id"]
    stored: JSON = await api_json(h, f"/api/v4/contacts/{contact_id}")
    return stored


def contacts_held(server: SandboxServer) -> int:
    """How many contacts the sandbox holds, hidden ones (of unsorted items) included."""
    stats = httpx.get(f"{server.url}/_sandbox/stats", timeout=10).json()
    return int(stats["entities"]["contacts"])


async def lead_contact(h: Harness, lead_id: int) -> int:
    lead = await api_json(h, f"/api/v4/leads/{lead_id}?with=contacts")
    [linked] = lead["_embedded"]["contacts"]
    return int(linked["id"])


def lead(n: int, **contact: Any) -> JSON:
    return {
        "lead": {"name": f"Lead {n}", "price": n},
        "contact": {"name": f"Visitor {n}", **contact},
        "comment": f"comment {n}",
    }


async def test_a_lead_with_a_national_number_is_linked_to_the_contact_stored_formatted(
    fresh: SandboxServer, settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, server=fresh, **QUEUE_ONLY) as h:
        before = await make_contact(h, "Alisher Navoi", phone="+998 90 123-45-67")
        [delivery_id] = await queue(h, [lead(1, phone="901234567")], api_headers)
        await drain(h, worker(h))

        record = await delivery(h, delivery_id, api_headers)
        after = await api_json(h, f"/api/v4/contacts/{before['id']}")
    assert record["status"] == "delivered"
    assert record["amocrm"]["contact_id"] == before["id"]
    assert record["amocrm"]["contact_matched"] is True
    assert after["name"] == "Alisher Navoi"
    assert after["custom_fields_values"] == before["custom_fields_values"]
    assert after["updated_at"] == before["updated_at"]  # nothing was added, nothing written
    assert contacts_held(fresh) == 1


async def test_a_lead_matched_by_email_is_linked_and_only_its_new_phone_is_added(
    fresh: SandboxServer, settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, server=fresh, **QUEUE_ONLY) as h:
        before = await make_contact(h, "Zarina", email="Zarina@Example.uz", phone="+998911112233")
        [delivery_id] = await queue(
            h, [lead(1, email="zarina@example.uz", phone="+998 93 444 55 66")], api_headers
        )
        await drain(h, worker(h))
        record = await delivery(h, delivery_id, api_headers)
        after = contact_card(await api_json(h, f"/api/v4/contacts/{before['id']}"))
    assert record["amocrm"]["contact_id"] == before["id"]
    assert record["amocrm"]["contact_matched"] is True
    assert after.name == "Zarina"
    assert [e.value for e in after.emails] == ["Zarina@Example.uz"]
    assert [p.value for p in after.phones] == ["+998911112233", "+998934445566"]
    assert after.phones[0].enum_code == "MOB"  # the existing value kept its kind


async def test_a_phone_that_only_shares_a_substring_gets_a_new_contact(
    fresh: SandboxServer, settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, server=fresh, **QUEUE_ONLY) as h:
        # +998 90 123 45 67 is inside this longer number, but it is another number.
        other = await make_contact(h, "Someone else", phone="+998 90 123 45 678")
        [delivery_id] = await queue(h, [lead(1, phone="+998901234567")], api_headers)
        await drain(h, worker(h))
        record = await delivery(h, delivery_id, api_headers)
    assert record["status"] == "delivered"
    assert record["amocrm"]["contact_id"] not in (None, other["id"])
    assert record["amocrm"]["contact_matched"] is False


async def test_twenty_concurrent_leads_of_one_new_person_share_one_contact(
    fresh: SandboxServer, settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, server=fresh, **QUEUE_ONLY) as h:
        bodies = [lead(n, phone="+998 97 765 43 21") for n in range(20)]
        ids = await queue(h, bodies, api_headers)
        # Two workers with small batches take the leads at the same time.
        await drain(h, worker(h, batch_size=4), worker(h, batch_size=4))
        records = [await delivery(h, i, api_headers) for i in ids]
        linked = {await lead_contact(h, r["amocrm"]["lead_id"]) for r in records}
    assert [r["status"] for r in records] == ["delivered"] * 20
    assert len(linked) == 1
    assert {r["amocrm"]["contact_id"] for r in records} == linked
    assert sorted(r["amocrm"]["contact_matched"] for r in records) == [False] + [True] * 19
    assert contacts_held(fresh) == 1


async def test_with_matching_off_every_lead_gets_its_own_contact_as_before(
    fresh: SandboxServer, settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, server=fresh, contact_dedup="off", **QUEUE_ONLY) as h:
        existing = await make_contact(h, "Alisher", phone="+998901234567")
        ids = await queue(h, [lead(n, phone="901234567") for n in range(3)], api_headers)
        await drain(h, worker(h))
        records = [await delivery(h, i, api_headers) for i in ids]
        requests = await h.requests("/api/v4/contacts")
    contact_ids = {r["amocrm"]["contact_id"] for r in records}
    assert len(contact_ids) == 3
    assert existing["id"] not in contact_ids
    assert [r["amocrm"]["contact_matched"] for r in records] == [False] * 3
    listed = [r for r in requests if r["method"] == "GET" and r["path"] == "/api/v4/contacts"]
    assert listed == []  # no contact list, no search
