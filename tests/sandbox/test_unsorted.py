"""Unsorted forms against amocrm-api.md §4.8."""

from __future__ import annotations

import httpx
import pytest

from amogate.amocrm.sandbox.app import create_sandbox_app
from amogate.amocrm.sandbox.clock import ManualClock
from amogate.amocrm.sandbox.config import SandboxConfig
from amogate.amocrm.sandbox.seed import MAIN_PIPELINE_ID, SECOND_PIPELINE_ID
from amogate.amocrm.sandbox.state import SandboxState
from amogate.amocrm.sandbox.transport import SandboxTransport
from tests.sandbox.helpers import JSON, bearer, exchange, form_item


async def send_forms(
    sandbox: httpx.AsyncClient, auth: dict[str, str], *items: JSON
) -> httpx.Response:
    return await sandbox.post("/api/v4/leads/unsorted/forms", json=list(items), headers=auth)


async def test_form_creates_an_unsorted_lead_and_contact(
    sandbox: httpx.AsyncClient, auth: dict[str, str], state: SandboxState
) -> None:
    response = await send_forms(sandbox, auth, form_item(request_id="req-7"))

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/hal+json"
    body = response.json()
    assert body["_total_items"] == 1
    (item,) = body["_embedded"]["unsorted"]
    assert item["request_id"] == "req-7"
    assert len(item["uid"]) == 60
    assert int(item["uid"], 16) >= 0
    assert item["account_id"] == 31_207_511
    assert item["_links"]["self"]["href"] == f"/api/v4/leads/unsorted/{item['uid']}"
    (lead_ref,) = item["_embedded"]["leads"]
    (contact_ref,) = item["_embedded"]["contacts"]
    assert lead_ref["_links"]["self"]["href"] == f"/api/v4/leads/{lead_ref['id']}"
    assert item["_embedded"]["companies"] == []

    lead = (await sandbox.get(f"/api/v4/leads/{lead_ref['id']}", headers=auth)).json()
    assert lead["pipeline_id"] == MAIN_PIPELINE_ID
    assert lead["status_id"] == 71_000_011  # the Unsorted stage
    assert lead["custom_fields_values"][0]["field_code"] == "UTM_SOURCE"
    assert lead["_embedded"]["tags"][0]["name"] == "website"
    contact = (await sandbox.get(f"/api/v4/contacts/{contact_ref['id']}", headers=auth)).json()
    assert contact["name"] == "Alisher Navoi"
    assert contact["is_unsorted"] is True


async def test_stored_item_keeps_source_metadata_and_created_at(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    created = (await send_forms(sandbox, auth, form_item("d-1"))).json()
    uid = created["_embedded"]["unsorted"][0]["uid"]

    item = (await sandbox.get(f"/api/v4/leads/unsorted/{uid}", headers=auth)).json()

    assert item["uid"] == uid
    assert item["source_uid"] == "d-1"
    assert item["source_name"] == "Sayt example.uz"
    assert item["category"] == "forms"
    assert item["pipeline_id"] == MAIN_PIPELINE_ID
    assert item["created_at"] == 1_750_000_000
    assert item["metadata"]["form_id"] == "contact_form"
    assert item["metadata"]["ip"] == "203.0.113.7"


@pytest.mark.parametrize("missing", ["source_name", "source_uid", "metadata"])
async def test_missing_required_item_fields_are_field_missing(
    sandbox: httpx.AsyncClient, auth: dict[str, str], missing: str, state: SandboxState
) -> None:
    item = form_item()
    del item[missing]

    response = await send_forms(sandbox, auth, item)

    assert response.status_code == 400
    (entry,) = response.json()["validation-errors"]
    assert entry["request_id"] == "0"
    assert entry["errors"] == [
        {"code": "FieldMissing", "path": missing, "detail": "This field is missing."}
    ]
    assert state.leads == {}
    assert state.contacts == {}


async def test_missing_metadata_fields_are_reported_by_dotted_path(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    item = form_item()
    del item["metadata"]["form_page"]

    response = await send_forms(sandbox, auth, item)

    errors = response.json()["validation-errors"][0]["errors"]
    assert [(e["code"], e["path"]) for e in errors] == [("FieldMissing", "metadata.form_page")]


async def test_one_bad_item_rejects_the_batch_listing_each_failure(
    sandbox: httpx.AsyncClient, auth: dict[str, str], state: SandboxState
) -> None:
    bad_phone = form_item("b", request_id="1")
    bad_phone["_embedded"]["contacts"][0]["custom_fields_values"][0]["values"][0]["enum_code"] = (
        "CELL"
    )
    bad_pipeline = form_item("c", request_id="2", pipeline_id=1)

    response = await send_forms(sandbox, auth, form_item("a"), bad_phone, bad_pipeline)

    assert response.status_code == 400
    errors = {e["request_id"]: e["errors"] for e in response.json()["validation-errors"]}
    assert (
        errors["1"][0]["path"] == "_embedded.contacts.0.custom_fields_values.0.values.0.enum_code"
    )
    assert errors["2"][0]["path"] == "pipeline_id"
    assert "0" not in errors
    assert state.unsorted == {}


async def test_unknown_lead_field_inside_a_form_is_not_supported(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    item = form_item()
    item["_embedded"]["leads"][0]["custom_fields_values"] = [
        {"field_code": "NOPE", "values": [{"value": "x"}]}
    ]

    response = await send_forms(sandbox, auth, item)

    error = response.json()["validation-errors"][0]["errors"][0]
    assert error["code"] == "NotSupportedChoice"
    assert error["path"] == "_embedded.leads.0.custom_fields_values.0.field_code"


async def test_form_into_the_second_pipeline(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    created = await send_forms(sandbox, auth, form_item(pipeline_id=SECOND_PIPELINE_ID))
    lead_id = created.json()["_embedded"]["unsorted"][0]["_embedded"]["leads"][0]["id"]

    lead = (await sandbox.get(f"/api/v4/leads/{lead_id}", headers=auth)).json()

    assert (lead["pipeline_id"], lead["status_id"]) == (SECOND_PIPELINE_ID, 71_000_021)


async def test_list_filters_and_orders(sandbox: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await send_forms(
        sandbox,
        auth,
        form_item("a", created_at=100),
        form_item("b", created_at=300, pipeline_id=SECOND_PIPELINE_ID),
        form_item("c", created_at=200),
    )

    listed = await sandbox.get(
        "/api/v4/leads/unsorted",
        params={"filter[category][]": "forms", "order[created_at]": "desc"},
        headers=auth,
    )
    by_pipeline = await sandbox.get(
        "/api/v4/leads/unsorted",
        params={"filter[pipeline_id]": SECOND_PIPELINE_ID},
        headers=auth,
    )
    sip = await sandbox.get(
        "/api/v4/leads/unsorted", params={"filter[category][]": "sip"}, headers=auth
    )

    body = listed.json()
    assert body["_total_items"] == 3
    assert [u["source_uid"] for u in body["_embedded"]["unsorted"]] == ["b", "c", "a"]
    assert [u["source_uid"] for u in by_pipeline.json()["_embedded"]["unsorted"]] == ["b"]
    assert sip.status_code == 204
    uid = body["_embedded"]["unsorted"][1]["uid"]
    by_uid = await sandbox.get("/api/v4/leads/unsorted", params={"filter[uid]": uid}, headers=auth)
    assert [u["source_uid"] for u in by_uid.json()["_embedded"]["unsorted"]] == ["c"]


async def test_source_uid_filter_is_ignored_like_amocrm_unless_enabled(
    sandbox: httpx.AsyncClient, auth: dict[str, str], clock: ManualClock
) -> None:
    await send_forms(sandbox, auth, form_item("a"), form_item("b"))
    plain = await sandbox.get(
        "/api/v4/leads/unsorted", params={"filter[source_uid]": "b"}, headers=auth
    )
    assert plain.json()["_total_items"] == 2

    config = SandboxConfig(public_url="http://sandbox.test", unsorted_source_uid_filter=True)
    app = create_sandbox_app(config, SandboxState(config, clock=clock))
    async with httpx.AsyncClient(transport=SandboxTransport(app), base_url=config.public_url) as c:
        headers = bearer((await exchange(c, config))["access_token"])
        await send_forms(c, headers, form_item("a"), form_item("b"))
        filtered = await c.get(
            "/api/v4/leads/unsorted", params={"filter[source_uid]": "b"}, headers=headers
        )

    assert [u["source_uid"] for u in filtered.json()["_embedded"]["unsorted"]] == ["b"]


async def test_repeated_source_uid_is_accepted_and_counted(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await send_forms(sandbox, auth, form_item("same"))
    again = await send_forms(sandbox, auth, form_item("same"))

    stats = (await sandbox.get("/_sandbox/stats")).json()

    assert again.status_code == 200
    assert stats["unsorted_duplicate_source_uids"] == 1
    assert stats["entities"]["unsorted"] == 2


async def test_accept_moves_the_lead_on_and_reveals_the_contact(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    created = (await send_forms(sandbox, auth, form_item())).json()["_embedded"]["unsorted"][0]
    uid = created["uid"]
    lead_id = created["_embedded"]["leads"][0]["id"]
    hidden = await sandbox.get("/api/v4/contacts", params={"query": "Alisher"}, headers=auth)
    assert hidden.status_code == 204

    accepted = await sandbox.post(f"/api/v4/leads/unsorted/{uid}/accept", headers=auth)

    assert accepted.status_code == 200
    body = accepted.json()
    assert body["uid"] == uid
    assert body["category"] == "forms"
    assert body["_embedded"]["leads"][0]["id"] == lead_id
    lead = (await sandbox.get(f"/api/v4/leads/{lead_id}", headers=auth)).json()
    assert lead["status_id"] == 71_000_012
    shown = await sandbox.get("/api/v4/contacts", params={"query": "Alisher"}, headers=auth)
    assert shown.status_code == 200
    assert (await sandbox.get("/api/v4/leads/unsorted", headers=auth)).status_code == 204
    again = await sandbox.post(f"/api/v4/leads/unsorted/{uid}/accept", headers=auth)
    assert again.status_code == 400


async def test_accept_into_a_chosen_status(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    created = (await send_forms(sandbox, auth, form_item())).json()["_embedded"]["unsorted"][0]

    await sandbox.post(
        f"/api/v4/leads/unsorted/{created['uid']}/accept",
        json={"user_id": 0, "status_id": 71_000_014},
        headers=auth,
    )

    lead_id = created["_embedded"]["leads"][0]["id"]
    lead = (await sandbox.get(f"/api/v4/leads/{lead_id}", headers=auth)).json()
    assert lead["status_id"] == 71_000_014


async def test_decline_removes_the_lead(sandbox: httpx.AsyncClient, auth: dict[str, str]) -> None:
    created = (await send_forms(sandbox, auth, form_item())).json()["_embedded"]["unsorted"][0]

    declined = await sandbox.delete(
        f"/api/v4/leads/unsorted/{created['uid']}/decline", headers=auth
    )

    assert declined.status_code == 200
    lead_id = created["_embedded"]["leads"][0]["id"]
    assert (await sandbox.get(f"/api/v4/leads/{lead_id}", headers=auth)).status_code == 204
    summary = (await sandbox.get("/api/v4/leads/unsorted/summary", headers=auth)).json()
    assert summary["total"] == 1
    assert summary["declined"] == 1


async def test_unknown_uid(sandbox: httpx.AsyncClient, auth: dict[str, str]) -> None:
    got = await sandbox.get("/api/v4/leads/unsorted/abc", headers=auth)
    accepted = await sandbox.post("/api/v4/leads/unsorted/abc/accept", headers=auth)

    assert got.status_code == 204
    assert accepted.status_code == 404


async def test_posting_to_unsorted_without_a_category_is_405(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await sandbox.post("/api/v4/leads/unsorted", json=[form_item()], headers=auth)

    assert response.status_code == 405
