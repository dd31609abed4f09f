"""Leads through the gateway's API and its delivery worker, to the amoCRM sandbox over real
HTTP: a returning customer's lead goes to the contact amoCRM already has, which keeps its
name and values; one new person gets one contact; matching off restores a contact per lead."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import update

from amogate.amocrm.models import contact_card
from amogate.amocrm.sandbox.runner import SandboxServer
from amogate.app_state import state_of
from amogate.contacts.index import ContactIndex
from amogate.settings import Settings
from amogate.storage import migrate
from amogate.storage.db import Database
from amogate.storage.tables import amo_accounts
from tests.contacts.delivering import (
    QUEUE_ONLY,
    contacts_held,
    drain,
    lead,
    lead_contact,
    make_contact,
    queue,
    worker,
)
from tests.leads.helpers import api_json, delivery
from tests.support.gateway import connected_gateway


@pytest.mark.parametrize("lookup", ["index", "search"])
async def test_a_lead_with_a_national_number_is_linked_to_the_contact_stored_formatted(
    fresh: SandboxServer, settings: Settings, api_headers: dict[str, str], lookup: str
) -> None:
    async with connected_gateway(settings, server=fresh, **QUEUE_ONLY) as h:
        before = await make_contact(h, "Alisher Navoi", phone="+998 90 123-45-67")
        [delivery_id] = await queue(h, [lead(1, phone="901234567")], api_headers)
        await drain(h, worker(h, lookup=lookup))

        record = await delivery(h, delivery_id, api_headers)
        after = await api_json(h, f"/api/v4/contacts/{before['id']}")
        reads = [str(r["query"]) for r in await h.requests("/api/v4/contacts")]
    assert record["status"] == "delivered"
    # The index showed the contact holding the number: nothing to add, nothing read again.
    assert not [q for q in reads if "filter[id]" in q or "filter%5Bid%5D" in q]
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


@pytest.mark.parametrize("lookup", ["index", "search"])
async def test_a_phone_that_only_shares_a_substring_gets_a_new_contact(
    fresh: SandboxServer, settings: Settings, api_headers: dict[str, str], lookup: str
) -> None:
    async with connected_gateway(settings, server=fresh, **QUEUE_ONLY) as h:
        # +998 90 123 45 67 is inside this longer number, but it is another number.
        other = await make_contact(h, "Someone else", phone="+998 90 123 45 678")
        [delivery_id] = await queue(h, [lead(1, phone="+998901234567")], api_headers)
        await drain(h, worker(h, lookup=lookup))
        record = await delivery(h, delivery_id, api_headers)
    assert record["status"] == "delivered"
    assert record["amocrm"]["contact_id"] not in (None, other["id"])
    assert record["amocrm"]["contact_matched"] is False


async def test_twenty_concurrent_leads_of_one_new_person_share_one_contact(
    fresh: SandboxServer, settings: Settings, api_headers: dict[str, str], database_url: str
) -> None:
    """On SQLite and on PostgreSQL (two workers sharing the database, as two processes do)."""
    schema = Database(database_url)
    await migrate.upgrade(schema)
    await schema.dispose()
    async with connected_gateway(
        settings, server=fresh, database_url=database_url, **QUEUE_ONLY
    ) as h:
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


async def test_a_contact_made_in_amocrm_after_the_index_was_built_is_found_next_batch(
    fresh: SandboxServer, settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, server=fresh, **QUEUE_ONLY) as h:
        first = worker(h)
        await queue(h, [lead(1, phone="+998901110000")], api_headers)
        await drain(h, first)  # the index is built here, without the contact below
        later = await make_contact(h, "Made by a manager", phone="+998 90 222 33 44")
        [delivery_id] = await queue(h, [lead(2, phone="902223344")], api_headers)
        await drain(h, first)
        record = await delivery(h, delivery_id, api_headers)
        listed = [
            r["query"]
            for r in await h.requests("/api/v4/contacts")
            if r["method"] == "GET" and r["path"] == "/api/v4/contacts"
        ]
    assert record["amocrm"]["contact_id"] == later["id"]
    assert record["amocrm"]["contact_matched"] is True
    assert "query" not in " ".join(str(q) for q in listed)  # the index, not a search
    assert any("updated_at" in str(q) for q in listed)  # only the changes since


async def test_an_account_too_large_to_index_is_searched_once_per_distinct_value(
    fresh: SandboxServer, settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, server=fresh, **QUEUE_ONLY) as h:
        existing = await make_contact(h, "Alisher Navoi", phone="+998 90 123-45-67")
        too_large = worker(h)
        assert too_large.contacts is not None
        too_large.contacts.index_factory = lambda: ContactIndex(max_pages=0)
        ids = await queue(
            h, [lead(n, phone="90 123 45 67") for n in range(3)] + [lead(9)], api_headers
        )
        await drain(h, too_large)
        records = [await delivery(h, i, api_headers) for i in ids]
        searches = [
            r["query"]
            for r in await h.requests("/api/v4/contacts")
            if r["method"] == "GET" and "query=" in str(r["query"])
        ]
    assert [r["amocrm"]["contact_id"] for r in records[:3]] == [existing["id"]] * 3
    assert len(searches) == 1  # one person, one search; the lead without phone/email none
    assert "query=901234567" in searches[0]


async def test_a_remembered_contact_amocrm_no_longer_has_is_forgotten_and_replaced(
    fresh: SandboxServer, settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, server=fresh, **QUEUE_ONLY) as h:
        [first_id] = await queue(h, [lead(1, phone="+998945550000")], api_headers)
        await drain(h, worker(h))
        first = await delivery(h, first_id, api_headers)
        # A manager declines the unsorted lead: amoCRM deletes its hidden contact.
        declined = await h.sandbox_api(
            "DELETE", f"/api/v4/leads/unsorted/{first['amocrm']['uid']}/decline"
        )
        assert declined.status_code == 200
        [second_id] = await queue(h, [lead(2, phone="+998945550000")], api_headers)
        await drain(h, worker(h))
        second = await delivery(h, second_id, api_headers)
        forms = await h.requests("/api/v4/leads/unsorted/forms")
    assert second["status"] == "delivered"
    assert second["amocrm"]["contact_id"] not in (None, first["amocrm"]["contact_id"])
    assert second["amocrm"]["contact_matched"] is False
    assert [f["status"] for f in forms] == [200, 400, 200]  # the old id refused, then a new one


async def test_of_two_matching_contacts_the_latest_updated_is_linked_and_the_lead_says_so(
    fresh: SandboxServer, settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, server=fresh, **QUEUE_ONLY) as h:
        older = await make_contact(h, "Old card", phone="+998977001122")
        newer_id = (await make_contact(h, "Newer card", phone="998977001122"))["id"]
        await asyncio.sleep(1.1)  # amoCRM's updated_at counts seconds
        touched = await h.sandbox_api(
            "PATCH", "/api/v4/contacts", json=[{"id": older["id"], "name": "Old card, edited"}]
        )
        touched.raise_for_status()
        [delivery_id] = await queue(h, [lead(1, phone="+998 97 700 11 22")], api_headers)
        await drain(h, worker(h))
        record = await delivery(h, delivery_id, api_headers)
    assert record["amocrm"]["contact_id"] == older["id"]
    [warning] = [w for w in record["warnings"] if w["field"] == "contact"]
    assert f"({older['id']}, {newer_id})" in warning["problem"]
    assert "updated last" in warning["problem"]


async def test_an_accounts_own_dedup_setting_wins_over_contact_dedup(
    fresh: SandboxServer, settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, server=fresh, **QUEUE_ONLY) as h:
        # Where `amogate accounts add|update NAME --dedup off` keeps an account's own setting.
        async with state_of(h.app).running().database.transaction() as conn:
            await conn.execute(
                update(amo_accounts)
                .where(amo_accounts.c.account_key == "default")
                .values(contact_dedup="off")
            )
        existing = await make_contact(h, "Alisher", phone="+998901234567")
        [delivery_id] = await queue(h, [lead(1, phone="901234567")], api_headers)
        await drain(h, worker(h))
        record = await delivery(h, delivery_id, api_headers)
    assert state_of(h.app).settings.contact_dedup == "phone,email"
    assert record["amocrm"]["contact_id"] != existing["id"]
    assert record["amocrm"]["contact_matched"] is False
