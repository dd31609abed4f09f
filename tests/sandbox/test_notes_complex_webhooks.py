"""Notes, complex leads and webhook subscriptions against amocrm-api.md §4.7, §4.9, §4.11."""

from __future__ import annotations

import httpx

from amogate.amocrm.sandbox.state import SandboxState


async def new_lead(sandbox: httpx.AsyncClient, auth: dict[str, str]) -> int:
    response = await sandbox.post("/api/v4/leads", json=[{"name": "x"}], headers=auth)
    lead_id: int = response.json()["_embedded"]["leads"][0]["id"]
    return lead_id


async def test_note_on_a_lead_is_created_and_listed(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    lead_id = await new_lead(sandbox, auth)

    response = await sandbox.post(
        f"/api/v4/leads/{lead_id}/notes",
        json=[{"note_type": "common", "params": {"text": "Izoh: UTM google"}, "request_id": "n1"}],
        headers=auth,
    )

    assert response.status_code == 200
    body = response.json()
    (note,) = body["_embedded"]["notes"]
    assert note["entity_id"] == lead_id
    assert note["request_id"] == "n1"
    assert note["_links"]["self"]["href"] == (
        f"http://sandbox.test/api/v4/leads/{lead_id}/notes/{note['id']}"
    )
    listed = (await sandbox.get(f"/api/v4/leads/{lead_id}/notes", headers=auth)).json()
    (stored,) = listed["_embedded"]["notes"]
    assert stored["id"] == note["id"]
    assert stored["note_type"] == "common"
    assert stored["params"] == {"text": "Izoh: UTM google"}
    one = await sandbox.get(f"/api/v4/leads/{lead_id}/notes/{note['id']}", headers=auth)
    assert one.json() == stored


async def test_notes_by_entity_id_in_the_body(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    first, second = await new_lead(sandbox, auth), await new_lead(sandbox, auth)

    response = await sandbox.post(
        "/api/v4/leads/notes",
        json=[
            {"entity_id": first, "note_type": "common", "params": {"text": "a"}},
            {"entity_id": second, "note_type": "common", "params": {"text": "b"}},
        ],
        headers=auth,
    )

    assert [n["entity_id"] for n in response.json()["_embedded"]["notes"]] == [first, second]
    assert [n["request_id"] for n in response.json()["_embedded"]["notes"]] == ["0", "1"]
    filtered = await sandbox.get(
        "/api/v4/leads/notes", params={"filter[entity_id][]": second}, headers=auth
    )
    assert [n["params"]["text"] for n in filtered.json()["_embedded"]["notes"]] == ["b"]


async def test_note_validation(sandbox: httpx.AsyncClient, auth: dict[str, str]) -> None:
    lead_id = await new_lead(sandbox, auth)

    response = await sandbox.post(
        "/api/v4/leads/notes",
        json=[
            {"note_type": "common", "params": {"text": "no entity"}},
            {"entity_id": 1, "note_type": "common", "params": {"text": "unknown"}},
            {"entity_id": lead_id, "note_type": "poem", "params": {"text": "x"}},
            {"entity_id": lead_id, "note_type": "common"},
        ],
        headers=auth,
    )

    assert response.status_code == 400
    errors = {
        e["request_id"]: [(x["code"], x["path"]) for x in e["errors"]]
        for e in response.json()["validation-errors"]
    }
    assert errors == {
        "0": [("FieldMissing", "entity_id")],
        "1": [("NotSupportedChoice", "entity_id")],
        "2": [("NotSupportedChoice", "note_type")],
        "3": [("FieldMissing", "params.text")],
    }


async def test_lead_without_notes_lists_204(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    lead_id = await new_lead(sandbox, auth)

    assert (await sandbox.get(f"/api/v4/leads/{lead_id}/notes", headers=auth)).status_code == 204


async def test_complex_answers_a_bare_array(
    sandbox: httpx.AsyncClient, auth: dict[str, str], state: SandboxState
) -> None:
    response = await sandbox.post(
        "/api/v4/leads/complex",
        json=[
            {
                "name": "Lead name",
                "price": 54321,
                "custom_fields_values": [
                    {"field_code": "UTM_SOURCE", "values": [{"value": "yandex"}]}
                ],
                "_embedded": {
                    "tags": [{"name": "Новый клиент"}],
                    "contacts": [
                        {
                            "first_name": "Ivan",
                            "custom_fields_values": [
                                {"field_code": "PHONE", "values": [{"value": "+79129876543"}]}
                            ],
                        }
                    ],
                    "companies": [{"name": "Qwerty LLC"}],
                },
                "request_id": "c-1",
            },
            {"name": "Only a lead"},
        ],
        headers=auth,
    )

    assert response.status_code == 200
    first, second = response.json()
    assert set(first) == {"id", "contact_id", "company_id", "request_id", "merged"}
    assert first["request_id"] == ["c-1"]
    assert first["merged"] is False
    assert second["contact_id"] is None
    assert second["company_id"] is None
    assert second["request_id"] == ["1"]
    lead = (
        await sandbox.get(f"/api/v4/leads/{first['id']}", params={"with": "contacts"}, headers=auth)
    ).json()
    assert lead["_embedded"]["contacts"][0]["id"] == first["contact_id"]
    assert lead["_embedded"]["companies"][0]["id"] == first["company_id"]
    assert state.contacts[first["contact_id"]].company_ids == [first["company_id"]]


async def test_complex_links_an_existing_contact(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    contact = await sandbox.post("/api/v4/contacts", json=[{"name": "Malika"}], headers=auth)
    contact_id = contact.json()["_embedded"]["contacts"][0]["id"]

    response = await sandbox.post(
        "/api/v4/leads/complex",
        json=[{"name": "x", "_embedded": {"contacts": [{"id": contact_id}]}}],
        headers=auth,
    )

    assert response.json()[0]["contact_id"] == contact_id


async def test_complex_limits(sandbox: httpx.AsyncClient, auth: dict[str, str]) -> None:
    too_many = await sandbox.post(
        "/api/v4/leads/complex", json=[{"name": str(i)} for i in range(51)], headers=auth
    )
    two_contacts = await sandbox.post(
        "/api/v4/leads/complex",
        json=[{"_embedded": {"contacts": [{"name": "a"}, {"name": "b"}]}}],
        headers=auth,
    )

    assert too_many.status_code == 400
    assert too_many.json()["detail"] == "Limit 50 per request"
    assert two_contacts.status_code == 400
    assert two_contacts.json()["validation-errors"][0]["errors"][0]["path"] == (
        "_embedded.contacts"
    )


async def test_webhook_subscribe_list_and_unsubscribe(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    destination = "https://gateway.example.uz/amo/hook"
    created = await sandbox.post(
        "/api/v4/webhooks",
        json={"destination": destination, "settings": ["add_lead", "add_unsorted"], "sort": 10},
        headers=auth,
    )

    assert created.status_code == 200
    hook = created.json()
    assert set(hook) == {
        "id",
        "destination",
        "created_at",
        "updated_at",
        "account_id",
        "created_by",
        "sort",
        "disabled",
        "settings",
    }
    assert hook["settings"] == ["add_lead", "add_unsorted"]
    listed = await sandbox.get(
        "/api/v4/webhooks", params={"filter[destination]": destination}, headers=auth
    )
    assert listed.json()["_total_items"] == 1
    assert listed.json()["_embedded"]["webhooks"][0]["id"] == hook["id"]

    removed = await sandbox.request(
        "DELETE", "/api/v4/webhooks", json={"destination": destination}, headers=auth
    )

    assert removed.status_code == 204
    assert (await sandbox.get("/api/v4/webhooks", headers=auth)).status_code == 204


async def test_webhook_settings_are_checked(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await sandbox.post(
        "/api/v4/webhooks",
        json={"destination": "https://x.uz/h", "settings": ["add_lead", "eat_lead"]},
        headers=auth,
    )

    assert response.status_code == 400
    assert response.json()["validation-errors"][0]["errors"][0]["path"] == "settings.1"
