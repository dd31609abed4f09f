"""`"mode": "lead"`: the lead goes straight into its pipeline stage through amoCRM's complex
leads, with its contact, tags, custom fields and note — through the gateway's API and worker,
to the sandbox over real HTTP; a crash between send and record creates nothing twice."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from amogate.amocrm.sandbox.runner import SandboxServer
from amogate.amocrm.sandbox.seed import MAIN_PIPELINE_ID
from amogate.app_state import state_of
from amogate.leads import direct
from amogate.leads.complex_item import complex_item
from amogate.leads.fields import account_fields
from amogate.leads.mapping import AccountFields
from amogate.settings import Settings
from amogate.storage import deliveries as store
from amogate.worker.deliver import utcnow
from tests.contacts.delivering import (
    QUEUE_ONLY,
    contacts_held,
    drain,
    lead_contact,
    make_contact,
    queue,
    worker,
)
from tests.leads.helpers import all_leads, api_json, delivery, lead_fields, unsorted_items
from tests.support.gateway import Harness, connected_gateway

JSON = dict[str, Any]
STAGE = 71_000_013  # "Bog'lanildi", the main pipeline's third stage


def direct_lead(n: int = 1, **contact: Any) -> JSON:
    return {
        "mode": "lead",
        "pipeline_id": MAIN_PIPELINE_ID,
        "form_name": "Callback form",
        "lead": {
            "name": f"Direct lead {n}",
            "price": 4200,
            "status_id": STAGE,
            "tags": ["site", "callback"],
            "custom_fields": [{"field_name": "Promo-kod", "value": "SPRING"}],
        },
        "contact": {"name": f"Direct visitor {n}", "phone": "+998 90 555 44 33", **contact},
        "utm": {"utm_source": "google"},
        "comment": "Please call after 18:00",
    }


async def notes_of(h: Harness, lead_id: int) -> list[JSON]:
    body = await api_json(h, f"/api/v4/leads/{lead_id}/notes")
    found: list[JSON] = body.get("_embedded", {}).get("notes", [])
    return found


async def test_a_direct_lead_lands_in_its_stage_with_contact_tags_fields_and_note(
    fresh: SandboxServer, settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, server=fresh, **QUEUE_ONLY) as h:
        [delivery_id] = await queue(h, [direct_lead()], api_headers)
        await drain(h, worker(h))

        record = await delivery(h, delivery_id, api_headers)
        lead_id = record["amocrm"]["lead_id"]
        stored = await api_json(h, f"/api/v4/leads/{lead_id}?with=contacts")
        contact = await api_json(h, f"/api/v4/contacts/{record['amocrm']['contact_id']}")
        notes = await notes_of(h, lead_id)
        unsorted = await unsorted_items(h)
        promo = next(f for f in await lead_fields(h) if f["name"] == "Promo-kod")
    assert record["status"] == "delivered"
    assert record["amocrm"]["uid"] is None  # no unsorted item
    assert record["amocrm"]["contact_matched"] is False
    assert unsorted == []
    assert (stored["pipeline_id"], stored["status_id"]) == (MAIN_PIPELINE_ID, STAGE)
    assert stored["price"] == 4200
    assert sorted(t["name"] for t in stored["_embedded"]["tags"]) == ["callback", "site"]
    values = {f["field_id"]: f["values"][0]["value"] for f in stored["custom_fields_values"]}
    assert values[promo["id"]] == "SPRING"
    assert [c["id"] for c in stored["_embedded"]["contacts"]] == [contact["id"]]
    assert contact["name"] == "Direct visitor 1"
    assert contact["is_unsorted"] is False  # visible at once, unlike an unsorted item's
    [note] = notes
    assert "Please call after 18:00" in note["params"]["text"]
    assert "Callback form" in note["params"]["text"]


async def test_a_direct_lead_of_a_returning_customer_links_the_existing_contact(
    fresh: SandboxServer, settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, server=fresh, **QUEUE_ONLY) as h:
        before = await make_contact(h, "Nodira", phone="+998905554433")
        ids = await queue(h, [direct_lead(1), direct_lead(2, phone="905554433")], api_headers)
        await drain(h, worker(h))
        records = [await delivery(h, i, api_headers) for i in ids]
        linked = {await lead_contact(h, r["amocrm"]["lead_id"]) for r in records}
        after = await api_json(h, f"/api/v4/contacts/{before['id']}")
    assert linked == {before["id"]}
    assert [r["amocrm"]["contact_matched"] for r in records] == [True, True]
    assert after["name"] == "Nodira"
    assert after["custom_fields_values"] == before["custom_fields_values"]
    assert contacts_held(fresh) == 1


async def test_a_direct_lead_sent_before_a_crash_is_found_and_not_created_twice(
    fresh: SandboxServer, settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, server=fresh, **QUEUE_ONLY) as h:
        [delivery_id] = await queue(h, [direct_lead()], api_headers)
        # A worker claims the lead, sends it, and dies before it can record the answer.
        now = utcnow()
        async with state_of(h.app).running().database.transaction() as conn:
            [row] = await store.claim_due(
                conn, owner="crashed", now=now, lease_until=now + timedelta(seconds=60), limit=5
            )
            await store.mark_sending_form(conn, [row.id], owner="crashed", now=now)
        client = await h.amo.client()
        field = await direct.delivery_field(client)
        known = await account_fields(h.info)
        fields = AccountFields([*known.lead, field], known.contact)
        item = complex_item(
            row.payload, fields, delivery_id=row.id, created_at=int(row.created_at.timestamp())
        ).item
        [sent] = await client.create_leads_complex([item])

        later = worker(h, clock=lambda: utcnow() + timedelta(seconds=61))
        await drain(h, later)
        record = await delivery(h, delivery_id, api_headers)
        complex_calls = await h.requests("/api/v4/leads/complex")
        leads = await all_leads(h)
        notes = await notes_of(h, sent.lead_id)
    assert record["status"] == "delivered"
    assert record["amocrm"]["lead_id"] == sent.lead_id
    assert record["amocrm"]["contact_id"] == sent.contact_id
    assert [(a["step"], a["outcome"]) for a in record["attempts"]] == [
        ("reconcile", "ok"),
        ("note", "ok"),
    ]
    assert len(complex_calls) == 1
    assert [lead["id"] for lead in leads] == [sent.lead_id]
    assert len(notes) == 1


async def test_a_value_amocrm_refuses_in_a_direct_lead_is_left_out_and_the_lead_lands_in_its_stage(
    fresh: SandboxServer, settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, server=fresh, **QUEUE_ONLY) as h:
        select = next(f for f in await lead_fields(h) if f["type"] == "select")
        body = direct_lead()
        # an option id that does not exist (the gateway passes ids through unchecked)
        body["lead"]["custom_fields"] = [{"field_id": select["id"], "enum_id": 1}]
        other = direct_lead(2, phone="+998 90 555 44 34")
        ids = await queue(h, [body, other], api_headers)
        await drain(h, worker(h))
        records = [await delivery(h, i, api_headers) for i in ids]
        stored = await api_json(h, f"/api/v4/leads/{records[0]['amocrm']['lead_id']}")
        calls = await h.requests("/api/v4/leads/complex")
    assert [r["status"] for r in records] == ["delivered", "delivered"]
    assert [w["field"] for w in records[0]["warnings"]] == ["lead.custom_fields.0"]
    assert "NotSupportedChoice" in records[0]["warnings"][0]["problem"]
    assert (stored["status_id"], stored["price"]) == (STAGE, 4200)
    assert [c["status"] for c in calls] == [400, 200]
