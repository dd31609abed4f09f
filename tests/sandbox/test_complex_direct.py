"""`POST /api/v4/leads/complex`: straight into a stage, linking contacts, duplicate control."""

from __future__ import annotations

import httpx

from amogate.amocrm.sandbox.clock import ManualClock
from amogate.amocrm.sandbox.seed import MAIN_PIPELINE_ID, SECOND_PIPELINE_ID
from amogate.amocrm.sandbox.state import SandboxState
from tests.sandbox.helpers import (
    JSON,
    email_field,
    form_item,
    new_contact,
    phone_field,
    search_ids,
)

OTHER_PIPELINE_STAGE = 71_000_023
OTHER_PIPELINE_UNSORTED = 71_000_021
FIRST_STAGE = 71_000_012
METADATA: JSON = {
    "category": "forms",
    "form_id": "contact_form",
    "form_name": "Обратная связь",
    "form_page": "https://example.uz/contacts",
    "form_sent_at": 1_750_000_000,
    "ip": "203.0.113.7",
}


async def complex_(sandbox: httpx.AsyncClient, auth: dict[str, str], *items: JSON) -> list[JSON]:
    response = await sandbox.post("/api/v4/leads/complex", json=list(items), headers=auth)
    assert response.status_code == 200, response.text
    answer: list[JSON] = response.json()
    return answer


async def read(sandbox: httpx.AsyncClient, auth: dict[str, str], path: str) -> JSON:
    response = await sandbox.get(path, headers=auth)
    assert response.status_code == 200, response.text
    body: JSON = response.json()
    return body


async def test_a_complex_lead_lands_in_the_given_stage_with_its_new_contact(
    sandbox: httpx.AsyncClient, auth: dict[str, str], state: SandboxState
) -> None:
    (answer,) = await complex_(
        sandbox,
        auth,
        {
            "name": "To'g'ridan-to'g'ri",
            "pipeline_id": SECOND_PIPELINE_ID,
            "status_id": OTHER_PIPELINE_STAGE,
            "custom_fields_values": [{"field_code": "UTM_SOURCE", "values": [{"value": "tg"}]}],
            "_embedded": {
                "tags": [{"name": "bot"}],
                "contacts": [
                    {"first_name": "Nodira", "custom_fields_values": [phone_field("+998901112233")]}
                ],
            },
            "request_id": "delivery-7",
        },
    )

    assert answer["request_id"] == ["delivery-7"]
    assert answer["merged"] is False
    lead = await read(sandbox, auth, f"/api/v4/leads/{answer['id']}?with=contacts")
    assert (lead["pipeline_id"], lead["status_id"]) == (SECOND_PIPELINE_ID, OTHER_PIPELINE_STAGE)
    assert [c["id"] for c in lead["_embedded"]["contacts"]] == [answer["contact_id"]]
    assert [t["name"] for t in lead["_embedded"]["tags"]] == ["bot"]
    assert lead["custom_fields_values"][0]["values"] == [{"value": "tg"}]
    assert await search_ids(sandbox, auth, "901112233") == [answer["contact_id"]]
    assert state.unsorted == {}


async def test_without_placement_a_complex_lead_lands_in_the_first_stage_of_the_main_pipeline(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    (answer,) = await complex_(sandbox, auth, {"name": "x"})

    lead = await read(sandbox, auth, f"/api/v4/leads/{answer['id']}")
    assert (lead["pipeline_id"], lead["status_id"]) == (MAIN_PIPELINE_ID, FIRST_STAGE)
    assert answer["contact_id"] is None


async def test_a_complex_lead_links_an_existing_contact_and_leaves_it_as_it_was(
    sandbox: httpx.AsyncClient, auth: dict[str, str], state: SandboxState
) -> None:
    existing = await new_contact(
        sandbox, auth, name="Eski mijoz", custom_fields_values=[phone_field("+998 90 123-45-67")]
    )
    before = await read(sandbox, auth, f"/api/v4/contacts/{existing}")

    (answer,) = await complex_(
        sandbox,
        auth,
        {"name": "Qayta murojaat", "_embedded": {"contacts": [{"id": existing}]}},
    )

    assert answer["contact_id"] == existing
    assert answer["merged"] is False
    assert len(state.contacts) == 1
    assert await read(sandbox, auth, f"/api/v4/contacts/{existing}") == before
    listed = await read(sandbox, auth, "/api/v4/leads?with=contacts")
    assert [c["id"] for c in listed["_embedded"]["leads"][0]["_embedded"]["contacts"]] == [existing]


async def test_an_unknown_or_deleted_contact_id_in_complex_is_a_400_that_stores_nothing(
    sandbox: httpx.AsyncClient, auth: dict[str, str], state: SandboxState
) -> None:
    declined = await sandbox.post("/api/v4/leads/unsorted/forms", json=[form_item()], headers=auth)
    item = declined.json()["_embedded"]["unsorted"][0]
    await sandbox.delete(f"/api/v4/leads/unsorted/{item['uid']}/decline", headers=auth)
    deleted = item["_embedded"]["contacts"][0]["id"]
    leads_before = dict(state.leads)

    response = await sandbox.post(
        "/api/v4/leads/complex",
        json=[
            {"name": "a", "_embedded": {"contacts": [{"id": 20_999_999}]}},
            {"name": "b", "_embedded": {"contacts": [{"id": str(deleted)}]}},
            {"name": "c", "_embedded": {"contacts": [{"id": deleted}]}},
        ],
        headers=auth,
    )

    assert response.status_code == 400
    assert [
        (item["request_id"], item["errors"][0]["code"], item["errors"][0]["path"])
        for item in response.json()["validation-errors"]
    ] == [
        ("0", "NotSupportedChoice", "_embedded.contacts.0.id"),
        ("1", "NotSupportedChoice", "_embedded.contacts.0.id"),
        ("2", "NotSupportedChoice", "_embedded.contacts.0.id"),
    ]
    assert state.leads == leads_before


async def test_metadata_of_a_form_sends_the_complex_lead_through_unsorted(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    (answer,) = await complex_(
        sandbox,
        auth,
        {
            "name": "Forma",
            "pipeline_id": SECOND_PIPELINE_ID,
            "status_id": OTHER_PIPELINE_STAGE,
            "_embedded": {
                "metadata": METADATA,
                "contacts": [{"name": "Yashirin", "custom_fields_values": [phone_field("777")]}],
            },
        },
    )

    lead = await read(sandbox, auth, f"/api/v4/leads/{answer['id']}")
    assert (lead["pipeline_id"], lead["status_id"]) == (SECOND_PIPELINE_ID, OTHER_PIPELINE_UNSORTED)
    (item,) = (await read(sandbox, auth, "/api/v4/leads/unsorted"))["_embedded"]["unsorted"]
    assert item["category"] == "forms"
    assert item["metadata"]["form_id"] == "contact_form"
    assert item["_embedded"]["leads"][0]["id"] == answer["id"]
    assert await search_ids(sandbox, auth, "777") == []

    await sandbox.post(f"/api/v4/leads/unsorted/{item['uid']}/accept", headers=auth)

    assert await search_ids(sandbox, auth, "777") == [answer["contact_id"]]


async def test_metadata_needs_a_known_category_and_the_form_fields(
    sandbox: httpx.AsyncClient, auth: dict[str, str], state: SandboxState
) -> None:
    response = await sandbox.post(
        "/api/v4/leads/complex",
        json=[
            {"_embedded": {"metadata": {"form_id": "f"}}},
            {"_embedded": {"metadata": {**METADATA, "category": "chats"}}},
            {"_embedded": {"metadata": {"category": "forms", "form_id": "f"}}},
            {"_embedded": {"metadata": {"category": "sip", "uniq": "call-1"}}},
        ],
        headers=auth,
    )

    errors = {
        item["request_id"]: [(e["code"], e["path"]) for e in item["errors"]]
        for item in response.json()["validation-errors"]
    }
    assert errors == {
        "0": [("FieldMissing", "_embedded.metadata.category")],
        "1": [("NotSupportedChoice", "_embedded.metadata.category")],
        "2": [
            ("FieldMissing", "_embedded.metadata.form_name"),
            ("FieldMissing", "_embedded.metadata.form_page"),
            ("FieldMissing", "_embedded.metadata.form_sent_at"),
        ],
    }
    assert state.leads == {}


async def test_merged_stays_false_while_duplicate_control_is_off(
    sandbox: httpx.AsyncClient, auth: dict[str, str], state: SandboxState
) -> None:
    await new_contact(
        sandbox, auth, name="Bor", custom_fields_values=[phone_field("+998901234567")]
    )

    (answer,) = await complex_(
        sandbox,
        auth,
        {"_embedded": {"contacts": [{"custom_fields_values": [phone_field("+998901234567")]}]}},
    )

    assert answer["merged"] is False
    assert len(state.contacts) == 2


async def test_duplicate_control_merges_a_new_contact_into_the_latest_matching_one(
    sandbox: httpx.AsyncClient, auth: dict[str, str], state: SandboxState, clock: ManualClock
) -> None:
    older = await new_contact(
        sandbox, auth, name="Older", custom_fields_values=[phone_field("+998 90 123-45-67")]
    )
    clock.advance(5)
    newer = await new_contact(
        sandbox, auth, name="Newer", custom_fields_values=[email_field("Same@Example.uz")]
    )
    switched = await sandbox.patch("/_sandbox/settings", json={"duplicate_control": True})
    assert switched.json()["duplicate_control"] is True

    by_phone, by_email, fresh = await complex_(
        sandbox,
        auth,
        {"_embedded": {"contacts": [{"custom_fields_values": [phone_field("+998901234567")]}]}},
        {"_embedded": {"contacts": [{"custom_fields_values": [email_field("same@example.UZ")]}]}},
        {"_embedded": {"contacts": [{"custom_fields_values": [phone_field("+998901234500")]}]}},
    )

    assert (by_phone["contact_id"], by_phone["merged"]) == (older, True)
    assert (by_email["contact_id"], by_email["merged"]) == (newer, True)
    assert fresh["merged"] is False
    assert fresh["contact_id"] not in (older, newer)
    assert len(state.contacts) == 3
    assert state.contacts[older].name == "Older"


async def test_settings_reject_bad_values_and_reset_restores_them(
    sandbox: httpx.AsyncClient,
) -> None:
    bad = await sandbox.patch("/_sandbox/settings", json={"duplicate_control": "yes"})
    unknown = await sandbox.patch("/_sandbox/settings", json={"merge_everything": True})
    negative = await sandbox.patch(
        "/_sandbox/settings", json={"duplicate_control": True, "webhook_timeout_s": -1}
    )
    unchanged = (await sandbox.get("/_sandbox/settings")).json()
    await sandbox.patch("/_sandbox/settings", json={"duplicate_control": True})
    await sandbox.post("/_sandbox/reset")
    after_reset = (await sandbox.get("/_sandbox/settings")).json()

    assert (bad.status_code, unknown.status_code, negative.status_code) == (400, 400, 400)
    assert unchanged == {
        "duplicate_control": False,
        "webhook_timeout_s": 2.0,
        "webhook_retry_factor": 1.0,
        "webhook_disable_failures": 100,
        "webhook_disable_window_s": 7200.0,
    }
    assert after_reset == unchanged


async def test_a_direct_lead_can_be_found_again_by_an_id_the_client_wrote_into_it(
    sandbox: httpx.AsyncClient, auth: dict[str, str], clock: ManualClock
) -> None:
    # amoCRM keeps no per-lead external id; a client writes its own into a custom field.
    field = await sandbox.post(
        "/api/v4/leads/custom_fields",
        json=[{"name": "amogate delivery", "type": "text", "code": "AMOGATE_DELIVERY"}],
        headers=auth,
    )
    assert field.status_code == 200
    await complex_(sandbox, auth, {"name": "old"})
    clock.advance(100)
    sent_at = int(clock())
    (answer,) = await complex_(
        sandbox,
        auth,
        {
            "name": "Lost answer",
            "custom_fields_values": [
                {"field_code": "AMOGATE_DELIVERY", "values": [{"value": "dlv_01J9Z"}]}
            ],
            "_embedded": {"source": {"external_id": "landing-1", "type": "widget"}},
        },
    )

    by_query = await read(sandbox, auth, "/api/v4/leads?query=dlv_01J9Z")
    by_time = await read(sandbox, auth, f"/api/v4/leads?filter[created_at][from]={sent_at}")

    assert [lead["id"] for lead in by_query["_embedded"]["leads"]] == [answer["id"]]
    assert [lead["id"] for lead in by_time["_embedded"]["leads"]] == [answer["id"]]
    (found,) = by_time["_embedded"]["leads"]
    assert found["custom_fields_values"][0]["values"] == [{"value": "dlv_01J9Z"}]
    with_source = await read(sandbox, auth, f"/api/v4/leads/{answer['id']}?with=source")
    assert with_source["_embedded"]["source"] == {"external_id": "landing-1", "type": "widget"}
