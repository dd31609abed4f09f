"""`PATCH /api/v4/{leads,contacts}[/{id}]` (amocrm-api.md §4.0, §4.4, §4.6)."""

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
    new_lead,
    phone_field,
    search_ids,
)

FIRST_STAGE = 71_000_012
SECOND_STAGE = 71_000_013
UNSORTED_STAGE = 71_000_011
OTHER_PIPELINE_FIRST_STAGE = 71_000_022
OTHER_PIPELINE_STAGE = 71_000_023
MANAGER = 9_100_002


def errors_of(response: httpx.Response) -> list[tuple[str, str, str]]:
    assert response.status_code == 400, response.text
    return [
        (item["request_id"], error["code"], error["path"])
        for item in response.json()["validation-errors"]
        for error in item["errors"]
    ]


async def read(sandbox: httpx.AsyncClient, auth: dict[str, str], path: str) -> JSON:
    response = await sandbox.get(path, headers=auth)
    assert response.status_code == 200, response.text
    body: JSON = response.json()
    return body


async def test_patching_one_lead_changes_it_and_answers_its_id_and_updated_at(
    sandbox: httpx.AsyncClient, auth: dict[str, str], clock: ManualClock
) -> None:
    lead_id = await new_lead(sandbox, auth, name="Yangi", price=100)
    created = await read(sandbox, auth, f"/api/v4/leads/{lead_id}")
    clock.advance(60)

    response = await sandbox.patch(
        f"/api/v4/leads/{lead_id}",
        json={
            "name": "Taklif",
            "price": 700_000,
            "status_id": SECOND_STAGE,
            "responsible_user_id": MANAGER,
        },
        headers=auth,
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/hal+json"
    assert response.json() == {
        "id": lead_id,
        "updated_at": int(clock()),
        "_links": {"self": {"href": f"http://sandbox.test/api/v4/leads/{lead_id}"}},
    }
    lead = await read(sandbox, auth, f"/api/v4/leads/{lead_id}")
    assert (lead["name"], lead["price"], lead["status_id"], lead["responsible_user_id"]) == (
        "Taklif",
        700_000,
        SECOND_STAGE,
        MANAGER,
    )
    assert lead["pipeline_id"] == MAIN_PIPELINE_ID
    assert lead["updated_at"] == created["updated_at"] + 60
    assert lead["created_at"] == created["created_at"]


async def test_a_batch_patch_echoes_request_ids_and_moves_between_pipelines(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    by_status = await new_lead(sandbox, auth)
    by_pipeline = await new_lead(sandbox, auth)

    response = await sandbox.patch(
        "/api/v4/leads",
        json=[
            {"id": by_status, "status_id": OTHER_PIPELINE_STAGE, "request_id": "move-1"},
            {"id": by_pipeline, "pipeline_id": SECOND_PIPELINE_ID},
        ],
        headers=auth,
    )

    assert response.status_code == 200
    body = response.json()
    assert body["_links"]["self"]["href"] == "http://sandbox.test/api/v4/leads"
    assert [(e["id"], e["request_id"]) for e in body["_embedded"]["leads"]] == [
        (by_status, "move-1"),
        (by_pipeline, "1"),
    ]
    assert set(body["_embedded"]["leads"][0]) == {"id", "updated_at", "request_id", "_links"}
    moved = await read(sandbox, auth, f"/api/v4/leads/{by_status}")
    assert (moved["pipeline_id"], moved["status_id"]) == (SECOND_PIPELINE_ID, OTHER_PIPELINE_STAGE)
    entered = await read(sandbox, auth, f"/api/v4/leads/{by_pipeline}")
    assert (entered["pipeline_id"], entered["status_id"]) == (
        SECOND_PIPELINE_ID,
        OTHER_PIPELINE_FIRST_STAGE,
    )


async def test_won_closes_a_lead_in_its_own_pipeline_and_reopening_clears_closed_at(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    lead_id = await new_lead(sandbox, auth, pipeline_id=SECOND_PIPELINE_ID)

    await sandbox.patch(f"/api/v4/leads/{lead_id}", json={"status_id": 142}, headers=auth)
    won = await read(sandbox, auth, f"/api/v4/leads/{lead_id}")
    await sandbox.patch(
        f"/api/v4/leads/{lead_id}", json={"status_id": OTHER_PIPELINE_STAGE}, headers=auth
    )
    reopened = await read(sandbox, auth, f"/api/v4/leads/{lead_id}")

    assert (won["pipeline_id"], won["status_id"]) == (SECOND_PIPELINE_ID, 142)
    assert won["closed_at"] is not None
    assert reopened["status_id"] == OTHER_PIPELINE_STAGE
    assert reopened["closed_at"] is None


async def test_bad_lead_changes_are_400_per_item_and_change_nothing(
    sandbox: httpx.AsyncClient, auth: dict[str, str], state: SandboxState
) -> None:
    good = await new_lead(sandbox, auth, name="Unchanged")

    response = await sandbox.patch(
        "/api/v4/leads",
        json=[
            {"id": good, "name": "Would change"},
            {"id": good, "status_id": 99_999_999},
            {"id": good, "pipeline_id": MAIN_PIPELINE_ID, "status_id": OTHER_PIPELINE_STAGE},
            {"id": good, "status_id": UNSORTED_STAGE},
            {"id": good, "pipeline_id": 1},
            {"id": 10_999_999, "name": "x"},
            {"name": "no id"},
            {"id": good, "price": "50 000", "name": 5, "responsible_user_id": 1},
            {"id": "7"},
        ],
        headers=auth,
    )

    assert errors_of(response) == [
        ("1", "NotSupportedChoice", "status_id"),
        ("2", "NotSupportedChoice", "status_id"),
        ("3", "NotSupportedChoice", "status_id"),
        ("4", "NotSupportedChoice", "pipeline_id"),
        ("5", "NotSupportedChoice", "id"),
        ("6", "FieldMissing", "id"),
        ("7", "InvalidType", "name"),
        ("7", "InvalidType", "price"),
        ("7", "NotSupportedChoice", "responsible_user_id"),
        ("8", "InvalidType", "id"),
    ]
    assert response.json()["detail"] == "Request validation failed"
    assert state.leads[good].name == "Unchanged"


async def test_a_lead_still_in_unsorted_cannot_be_moved_before_acceptance(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    created = await sandbox.post("/api/v4/leads/unsorted/forms", json=[form_item()], headers=auth)
    lead_id = created.json()["_embedded"]["unsorted"][0]["_embedded"]["leads"][0]["id"]

    moved = await sandbox.patch(
        f"/api/v4/leads/{lead_id}", json={"status_id": SECOND_STAGE}, headers=auth
    )
    renamed = await sandbox.patch(f"/api/v4/leads/{lead_id}", json={"price": 1}, headers=auth)

    assert errors_of(moved) == [("0", "NotSupportedChoice", "status_id")]
    assert renamed.status_code == 200
    lead = await read(sandbox, auth, f"/api/v4/leads/{lead_id}")
    assert (lead["status_id"], lead["price"]) == (UNSORTED_STAGE, 1)


async def test_malformed_patch_bodies_are_400(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    lead_id = await new_lead(sandbox, auth)

    empty = await sandbox.patch(f"/api/v4/leads/{lead_id}", content=b"", headers=auth)
    array = await sandbox.patch(f"/api/v4/leads/{lead_id}", json=[{"name": "x"}], headers=auth)
    no_items = await sandbox.patch("/api/v4/leads", json=[], headers=auth)
    too_many = await sandbox.patch("/api/v4/leads", json=[{"id": lead_id}] * 251, headers=auth)
    unknown = await sandbox.patch("/api/v4/leads/10999999", json={"name": "x"}, headers=auth)

    assert empty.status_code == 400
    assert empty.json()["detail"] == "Request data can not be empty"
    assert errors_of(array) == [("0", "InvalidType", "")]
    assert no_items.status_code == 400
    assert too_many.status_code == 422
    assert errors_of(unknown) == [("0", "NotSupportedChoice", "id")]


async def test_a_patch_that_changes_nothing_leaves_updated_at(
    sandbox: httpx.AsyncClient, auth: dict[str, str], clock: ManualClock
) -> None:
    lead_id = await new_lead(sandbox, auth, name="Same", price=5)
    before = await read(sandbox, auth, f"/api/v4/leads/{lead_id}")
    clock.advance(30)

    response = await sandbox.patch(
        f"/api/v4/leads/{lead_id}", json={"name": "Same", "price": 5}, headers=auth
    )

    assert response.json()["updated_at"] == before["updated_at"]


async def test_lead_tags_are_added_removed_and_replaced(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    lead_id = await new_lead(sandbox, auth, _embedded={"tags": [{"name": "sayt"}]})

    async def tags() -> list[str]:
        lead = await read(sandbox, auth, f"/api/v4/leads/{lead_id}")
        return [t["name"] for t in lead["_embedded"]["tags"]]

    await sandbox.patch(
        f"/api/v4/leads/{lead_id}", json={"tags_to_add": [{"name": "vip"}]}, headers=auth
    )
    assert await tags() == ["sayt", "vip"]
    await sandbox.patch(
        f"/api/v4/leads/{lead_id}", json={"tags_to_delete": [{"name": "sayt"}]}, headers=auth
    )
    assert await tags() == ["vip"]
    await sandbox.patch(
        f"/api/v4/leads/{lead_id}", json={"_embedded": {"tags": [{"name": "new"}]}}, headers=auth
    )
    assert await tags() == ["new"]


async def test_a_contact_field_given_replaces_that_fields_values_and_leaves_the_others(
    sandbox: httpx.AsyncClient, auth: dict[str, str], clock: ManualClock
) -> None:
    contact_id = await new_contact(
        sandbox,
        auth,
        name="Alisher Navoiy",
        custom_fields_values=[phone_field("+998 90 123-45-67"), email_field("a@example.uz")],
    )
    clock.advance(10)

    # Adding a phone: send the current one plus the new one, as amoCRM requires.
    added = await sandbox.patch(
        f"/api/v4/contacts/{contact_id}",
        json={"custom_fields_values": [phone_field("+998 90 123-45-67", "+998935550000")]},
        headers=auth,
    )
    contact = await read(sandbox, auth, f"/api/v4/contacts/{contact_id}")

    assert added.status_code == 200
    assert added.json()["updated_at"] == int(clock())
    assert contact["updated_at"] == int(clock())
    assert contact["name"] == "Alisher Navoiy"
    by_code = {f["field_code"]: f for f in contact["custom_fields_values"]}
    assert [v["value"] for v in by_code["PHONE"]["values"]] == [
        "+998 90 123-45-67",
        "+998935550000",
    ]
    assert [v["value"] for v in by_code["EMAIL"]["values"]] == ["a@example.uz"]
    assert await search_ids(sandbox, auth, "935550000") == [contact_id]

    # A field given with a single value replaces the list: the first phone is gone.
    await sandbox.patch(
        f"/api/v4/contacts/{contact_id}",
        json={"custom_fields_values": [phone_field("+998935550000")]},
        headers=auth,
    )
    assert await search_ids(sandbox, auth, "901234567") == []

    # `values: null` clears a field.
    await sandbox.patch(
        f"/api/v4/contacts/{contact_id}",
        json={"custom_fields_values": [{"field_code": "EMAIL", "values": None}]},
        headers=auth,
    )
    contact = await read(sandbox, auth, f"/api/v4/contacts/{contact_id}")
    assert [f["field_code"] for f in contact["custom_fields_values"]] == ["PHONE"]


async def test_a_batch_contact_patch_renames_and_checks_each_item(
    sandbox: httpx.AsyncClient, auth: dict[str, str], state: SandboxState
) -> None:
    first = await new_contact(sandbox, auth, name="Aziz")
    second = await new_contact(sandbox, auth, name="Bobur")

    bad = await sandbox.patch(
        "/api/v4/contacts",
        json=[
            {"id": first, "first_name": "Aziz", "last_name": "Rahimov"},
            {"id": second, "custom_fields_values": [phone_field("1").copy() | {"field_id": 1}]},
        ],
        headers=auth,
    )
    good = await sandbox.patch(
        "/api/v4/contacts",
        json=[
            {"id": first, "name": "Aziz Rahimov", "request_id": "a"},
            {"id": second, "responsible_user_id": MANAGER},
        ],
        headers=auth,
    )

    assert errors_of(bad) == [("1", "NotSupportedChoice", "custom_fields_values.0.field_id")]
    assert state.contacts[first].last_name == ""
    assert good.status_code == 200
    assert [(c["id"], c["request_id"]) for c in good.json()["_embedded"]["contacts"]] == [
        (first, "a"),
        (second, "1"),
    ]
    assert state.contacts[first].name == "Aziz Rahimov"
    assert state.contacts[second].responsible_user_id == MANAGER
