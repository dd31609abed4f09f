"""POST /api/v1/leads/unsorted against the amoCRM sandbox: what arrives in amoCRM."""

from __future__ import annotations

import asyncio
from typing import Any

from amogate.app_state import state_of
from amogate.settings import Settings
from tests.leads.helpers import (
    URL,
    api_json,
    delivery,
    lead_fields,
    main_pipeline_id,
    readme_example,
    simple_lead,
    unsorted_items,
)
from tests.support.gateway import connected_gateway

FAST: dict[str, Any] = {"lead_sync_timeout": 5.0, "delivery_retry_base_seconds": 0.2}


async def test_readme_example_arrives_in_amocrm_with_contact_utm_and_note(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, background=True, **FAST) as h:
        pipeline_id = await main_pipeline_id(h)
        response = await h.gateway.post(URL, json=readme_example(pipeline_id), headers=api_headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["message"] == "Unsorted lead created successfully"
        data = body["data"]
        assert data["status"] == "delivered"
        assert data["source_uid"] == data["delivery_id"]

        lead = await api_json(h, f"/api/v4/leads/{data['lead_id']}?with=contacts")
        assert lead["name"] == "Yangi mijoz"
        assert lead["price"] == 50000
        assert lead["pipeline_id"] == pipeline_id
        assert {t["name"] for t in lead["_embedded"]["tags"]} == {"website", "hot"}
        tracking = {
            v["field_code"]: v["values"][0]["value"]
            for v in lead["custom_fields_values"] or []
            if v.get("field_code")
        }
        assert tracking == {
            "UTM_SOURCE": "google",
            "UTM_MEDIUM": "cpc",
            "UTM_CAMPAIGN": "spring_sale",
        }
        assert [c["id"] for c in lead["_embedded"]["contacts"]] == [data["contact_id"]]

        contact = await api_json(h, f"/api/v4/contacts/{data['contact_id']}")
        values = {v["field_code"]: v["values"] for v in contact["custom_fields_values"]}
        assert contact["name"] == "Alisher Navoi"
        assert values["PHONE"][0]["value"] == "+998901234567"
        assert values["EMAIL"][0]["value"] == "alisher@example.com"

        notes = await api_json(h, f"/api/v4/leads/{data['lead_id']}/notes")
        [note] = notes["_embedded"]["notes"]
        assert note["note_type"] == "common"
        for text in ("Mijoz maxsulot haqida so'radi", "utm_source: google", "utm_medium: cpc"):
            assert text in note["params"]["text"]

        [item] = await unsorted_items(h)
        assert item["source_uid"] == data["delivery_id"]
        assert item["uid"] == data["uid"]
        assert item["metadata"]["form_name"] == "Contact Form"


async def test_custom_fields_by_id_name_and_label_arrive_with_their_values(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, background=True, **FAST) as h:
        fields = await lead_fields(h)
        text = next(f for f in fields if f["type"] == "text" and not f.get("code"))
        select = next(f for f in fields if f["type"] == "select")
        multi = next(f for f in fields if f["type"] == "multiselect")
        numeric = next(f for f in fields if f["type"] == "numeric")
        body = simple_lead(1)
        body["lead"]["custom_fields"] = [
            {"field_id": text["id"], "value": "ACME"},
            {"field_name": select["name"].upper(), "enum": select["enums"][1]["value"].lower()},
            {"field_id": multi["id"], "enums": [e["value"] for e in multi["enums"][:2]]},
            {"field_name": numeric["name"], "value": 12},
            {"field_id": select["id"], "enum_id": select["enums"][0]["id"]},
        ]
        response = await h.gateway.post(URL, json=body, headers=api_headers)
        assert response.status_code == 200, response.text
        lead = await api_json(h, f"/api/v4/leads/{response.json()['data']['lead_id']}")
        stored = {v["field_id"]: v["values"] for v in lead["custom_fields_values"]}
        assert stored[text["id"]] == [{"value": "ACME"}]
        # the later select value replaces the earlier one, as amoCRM keeps one value per field
        assert [v["enum_id"] for v in stored[select["id"]]] == [select["enums"][0]["id"]]
        assert [v["enum_id"] for v in stored[multi["id"]]] == [e["id"] for e in multi["enums"][:2]]
        assert stored[numeric["id"]] == [{"value": 12}]


async def test_an_unknown_field_or_label_is_a_warning_and_its_value_goes_to_the_note(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, background=True, **FAST) as h:
        select = next(f for f in await lead_fields(h) if f["type"] == "select")
        body = simple_lead(2)
        body["lead"]["custom_fields"] = [
            {"field_name": "No such field", "value": "qizil"},
            {"field_id": select["id"], "enum": "Platinum"},
        ]
        response = await h.gateway.post(URL, json=body, headers=api_headers)
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert data["warnings"] == [
            {
                "field": "lead.custom_fields.0",
                "problem": "amoCRM has no field field_name 'No such field'; kept in the note",
            },
            {
                "field": "lead.custom_fields.1.enum",
                "problem": f"field {select['name']!r} has no option 'Platinum'; kept in the note",
            },
        ]
        lead = await api_json(h, f"/api/v4/leads/{data['lead_id']}")
        assert not lead["custom_fields_values"]
        text = await note_text_of(h, data["lead_id"])
        assert "lead.custom_fields.0: qizil" in text
        assert "lead.custom_fields.1.enum: Platinum" in text
        record = await delivery(h, data["delivery_id"], api_headers)
        assert record["warnings"] == data["warnings"]


async def test_amocrm_refusing_one_value_delivers_the_lead_without_it_and_notes_why(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    """The admin page's "Miqdor": "besh" case: amoCRM refuses text in a numeric field."""
    async with connected_gateway(settings, background=True, **FAST) as h:
        fields = await lead_fields(h)
        numeric = next(f for f in fields if f["name"] == "Miqdor")
        text_field = next(f for f in fields if f["type"] == "text" and not f.get("code"))
        body = simple_lead(3)
        body["lead"]["custom_fields"] = [
            {"field_id": text_field["id"], "value": "ACME"},
            {"field_id": numeric["id"], "value": "besh"},
        ]
        response = await h.gateway.post(URL, json=body, headers=api_headers)
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        [warning] = data["warnings"]
        assert warning["field"] == "lead.custom_fields.1"
        assert "InvalidType" in warning["problem"]

        lead = await api_json(h, f"/api/v4/leads/{data['lead_id']}")
        stored = {v["field_id"]: v["values"] for v in lead["custom_fields_values"]}
        assert stored == {text_field["id"]: [{"value": "ACME"}]}
        text = await note_text_of(h, data["lead_id"])
        assert "lead.custom_fields.1: besh (amoCRM refused it: This value should be" in text

        record = await delivery(h, data["delivery_id"], api_headers)
        assert record["status"] == "delivered"
        assert record["warnings"] == data["warnings"]
        assert [(a["step"], a["outcome"], a["http_status"]) for a in record["attempts"]] == [
            ("form", "values_refused", 400),
            ("form", "ok", 200),
            ("note", "ok", 200),
        ]
        forms = await h.requests("/api/v4/leads/unsorted/forms")
        assert [r["status"] for r in forms] == [400, 200]


async def test_amocrm_refusing_the_lead_as_a_whole_fails_the_delivery_and_answers_422(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, background=True, **FAST) as h:
        await h.fault("400", 60, path_prefix="/api/v4/leads/unsorted/forms")
        response = await h.gateway.post(URL, json=simple_lead(4), headers=api_headers)
        assert response.status_code == 422, response.text
        assert response.json()["details"] == {"request": "amoCRM rejected the request (HTTP 400)"}
        [failed] = [d for d in await _deliveries(h, api_headers) if d["status"] == "failed"]
        assert failed["attempts"][0]["outcome"] == "permanent"
        assert failed["attempts"][0]["http_status"] == 400
        assert await unsorted_items(h) == []


async def note_text_of(h: Any, lead_id: int) -> str:
    notes = await api_json(h, f"/api/v4/leads/{lead_id}/notes")
    [note] = notes["_embedded"]["notes"]
    text: str = note["params"]["text"]
    return text


async def _deliveries(h: Any, headers: dict[str, str]) -> list[dict[str, Any]]:
    from amogate.storage import deliveries as store

    async with state_of(h.app).running().database.read() as conn:
        rows = await store.list_deliveries(conn)
    return [await delivery(h, row.id, headers) for row in rows]


async def test_a_lead_during_an_outage_is_answered_queued_without_holding_the_caller(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    """The first attempt fails at once and the retry is due after the sync deadline: the
    caller gets 202 right away instead of waiting the whole LEAD_SYNC_TIMEOUT."""
    async with connected_gateway(
        settings, background=True, lead_sync_timeout=20.0, delivery_retry_base_seconds=30.0
    ) as h:
        await h.fault("down", duration_s=60)
        loop = asyncio.get_running_loop()
        started = loop.time()
        response = await h.gateway.post(URL, json=simple_lead(7), headers=api_headers)
        waited = loop.time() - started
        assert response.status_code == 202
        assert response.json()["data"]["status"] == "queued"
        assert waited < 10, f"held the caller {waited:.1f} s of a 20 s timeout"
        record = await delivery(h, response.json()["data"]["delivery_id"], api_headers)
        assert record["status"] == "retrying"
        assert record["attempts"]
