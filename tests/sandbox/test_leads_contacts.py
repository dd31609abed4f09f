"""Leads and contacts against amocrm-api.md §4.4, §4.6, §4.10 and the errors of §3."""

from __future__ import annotations

import httpx

from amogate.amocrm.sandbox.seed import MAIN_PIPELINE_ID, SECOND_PIPELINE_ID
from amogate.amocrm.sandbox.state import SandboxState
from tests.sandbox.helpers import JSON


def field_id(state: SandboxState, name: str) -> int:
    return int(next(f["id"] for f in state.custom_fields["leads"] if f["name"] == name))


def phone(number: str, kind: str = "MOB") -> JSON:
    return {"field_code": "PHONE", "values": [{"value": number, "enum_code": kind}]}


async def create_contact(sandbox: httpx.AsyncClient, auth: dict[str, str], **item: object) -> int:
    response = await sandbox.post("/api/v4/contacts", json=[item], headers=auth)
    assert response.status_code == 200, response.text
    contact_id: int = response.json()["_embedded"]["contacts"][0]["id"]
    return contact_id


async def test_created_lead_comes_back_with_fields_and_tags_as_amocrm_returns_them(
    sandbox: httpx.AsyncClient, auth: dict[str, str], state: SandboxState
) -> None:
    mahsulot = field_id(state, "Mahsulot turi")
    response = await sandbox.post(
        "/api/v4/leads",
        json=[
            {
                "name": "Заявка с сайта",
                "price": 500000,
                "custom_fields_values": [
                    {"field_id": mahsulot, "values": [{"value": "Premium"}]},
                    {"field_code": "UTM_SOURCE", "values": [{"value": "google"}]},
                ],
                "_embedded": {"tags": [{"name": "website"}]},
                "request_id": "form-42",
            }
        ],
        headers=auth,
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/hal+json"
    created = response.json()
    assert created["_links"]["self"]["href"] == "http://sandbox.test/api/v4/leads"
    (item,) = created["_embedded"]["leads"]
    assert item["request_id"] == "form-42"
    assert item["_links"]["self"]["href"] == f"http://sandbox.test/api/v4/leads/{item['id']}"

    lead = (await sandbox.get(f"/api/v4/leads/{item['id']}", headers=auth)).json()
    assert lead["name"] == "Заявка с сайта"
    assert lead["price"] == 500000
    assert lead["pipeline_id"] == MAIN_PIPELINE_ID
    assert lead["status_id"] == 71_000_012  # first regular stage of the main pipeline
    by_code = {v["field_name"]: v for v in lead["custom_fields_values"]}
    premium_enum = next(
        e["id"]
        for f in state.custom_fields["leads"]
        if f["id"] == mahsulot
        for e in f["enums"]
        if e["value"] == "Premium"
    )
    assert by_code["Mahsulot turi"] == {
        "field_id": mahsulot,
        "field_name": "Mahsulot turi",
        "field_code": None,
        "field_type": "select",
        "values": [{"value": "Premium", "enum_id": premium_enum, "enum_code": None}],
    }
    assert by_code["utm_source"]["field_code"] == "UTM_SOURCE"
    assert by_code["utm_source"]["values"] == [{"value": "google"}]
    (tag,) = lead["_embedded"]["tags"]
    assert tag["name"] == "website"
    assert set(tag) == {"id", "name", "color"}


async def test_request_id_defaults_to_the_item_index(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await sandbox.post(
        "/api/v4/leads", json=[{"name": "a"}, {"name": "b"}], headers=auth
    )

    assert [i["request_id"] for i in response.json()["_embedded"]["leads"]] == ["0", "1"]


async def test_lead_with_contacts_lists_its_linked_contacts(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    contact_id = await create_contact(sandbox, auth, name="Malika")
    created = await sandbox.post(
        "/api/v4/leads",
        json=[{"name": "x", "_embedded": {"contacts": [{"id": contact_id}]}}],
        headers=auth,
    )
    lead_id = created.json()["_embedded"]["leads"][0]["id"]

    plain = (await sandbox.get(f"/api/v4/leads/{lead_id}", headers=auth)).json()
    linked = (
        await sandbox.get(f"/api/v4/leads/{lead_id}", params={"with": "contacts"}, headers=auth)
    ).json()

    assert "contacts" not in plain["_embedded"]
    assert [c["id"] for c in linked["_embedded"]["contacts"]] == [contact_id]


async def test_invalid_items_reject_the_whole_batch_with_validation_errors(
    sandbox: httpx.AsyncClient, auth: dict[str, str], state: SandboxState
) -> None:
    mahsulot = field_id(state, "Mahsulot turi")
    response = await sandbox.post(
        "/api/v4/leads",
        json=[
            {"name": "fine"},
            {
                "name": "bad",
                "request_id": "r2",
                "custom_fields_values": [
                    {"field_code": "UTM_SOURCE", "values": [{"value": "ok"}]},
                    {"field_id": 1, "values": [{"value": "x"}]},
                    {"field_id": mahsulot, "values": [{"value": "Gold"}]},
                ],
            },
            {"pipeline_id": 5, "status_id": 1},
        ],
        headers=auth,
    )

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["title"] == "Bad Request"
    assert body["type"] == "https://httpstatus.es/400"
    assert body["status"] == 400
    assert body["detail"] == "Request validation failed"
    errors = {e["request_id"]: e["errors"] for e in body["validation-errors"]}
    assert set(errors) == {"r2", "2"}
    assert errors["r2"] == [
        {
            "code": "NotSupportedChoice",
            "path": "custom_fields_values.1.field_id",
            "detail": "The value you selected is not a valid choice.",
        },
        {
            "code": "NotSupportedChoice",
            "path": "custom_fields_values.2.values.0.value",
            "detail": "The value you selected is not a valid choice.",
        },
    ]
    assert {e["path"] for e in errors["2"]} == {"pipeline_id", "status_id"}
    assert state.leads == {}


async def test_status_from_another_pipeline_is_rejected(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await sandbox.post(
        "/api/v4/leads",
        json=[{"pipeline_id": SECOND_PIPELINE_ID, "status_id": 71_000_013}],
        headers=auth,
    )

    assert response.status_code == 400
    assert response.json()["validation-errors"][0]["errors"][0]["path"] == "status_id"


async def test_won_status_needs_its_pipeline_and_closes_the_lead(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    created = await sandbox.post(
        "/api/v4/leads",
        json=[{"pipeline_id": SECOND_PIPELINE_ID, "status_id": 142}],
        headers=auth,
    )
    lead_id = created.json()["_embedded"]["leads"][0]["id"]

    lead = (await sandbox.get(f"/api/v4/leads/{lead_id}", headers=auth)).json()

    assert (lead["pipeline_id"], lead["status_id"]) == (SECOND_PIPELINE_ID, 142)
    assert lead["closed_at"] is not None


async def test_unknown_responsible_user_is_rejected(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await sandbox.post(
        "/api/v4/leads", json=[{"name": "x", "responsible_user_id": 42}], headers=auth
    )

    assert response.json()["validation-errors"][0]["errors"][0] == {
        "code": "NotSupportedChoice",
        "path": "responsible_user_id",
        "detail": "The value you selected is not a valid choice.",
    }


async def test_field_values_of_the_wrong_kind_are_invalid_type(
    sandbox: httpx.AsyncClient, auth: dict[str, str], state: SandboxState
) -> None:
    response = await sandbox.post(
        "/api/v4/leads",
        json=[
            {
                "custom_fields_values": [
                    {"field_id": field_id(state, "Miqdor"), "values": [{"value": "many"}]},
                    {"field_id": field_id(state, "Qayta aloqa"), "values": [{"value": "yes"}]},
                ]
            }
        ],
        headers=auth,
    )

    errors = response.json()["validation-errors"][0]["errors"]
    assert [(e["code"], e["path"]) for e in errors] == [
        ("InvalidType", "custom_fields_values.0.values.0.value"),
        ("InvalidType", "custom_fields_values.1.values.0.value"),
    ]


async def test_texts_longer_than_their_field_takes_are_refused_at_256_characters(
    sandbox: httpx.AsyncClient, auth: dict[str, str], state: SandboxState
) -> None:
    """amoCRM's API refuses more than 256 characters in a text field (the web interface takes
    more: amocrm-api-php issues #224, #400); the same limit applies to phone values."""
    inn = field_id(state, "INN")
    fits = await sandbox.post(
        "/api/v4/leads",
        json=[{"custom_fields_values": [{"field_id": inn, "values": [{"value": "x" * 256}]}]}],
        headers=auth,
    )
    assert fits.status_code == 200, fits.text
    too_long = await sandbox.post(
        "/api/v4/leads",
        json=[{"custom_fields_values": [{"field_id": inn, "values": [{"value": "x" * 257}]}]}],
        headers=auth,
    )
    assert too_long.status_code == 400
    [error] = too_long.json()["validation-errors"][0]["errors"]
    assert error == {
        "code": "InvalidLength",
        "path": "custom_fields_values.0.values.0.value",
        "detail": "This value is too long. It should have 256 characters or less.",
    }
    contact = await sandbox.post(
        "/api/v4/contacts", json=[{"custom_fields_values": [phone("9" * 257)]}], headers=auth
    )
    assert contact.status_code == 400
    assert contact.json()["validation-errors"][0]["errors"][0]["code"] == "InvalidLength"


async def test_values_of_every_common_type_are_stored(
    sandbox: httpx.AsyncClient, auth: dict[str, str], state: SandboxState
) -> None:
    qiziqish = next(f for f in state.custom_fields["leads"] if f["name"] == "Qiziqishlar")
    created = await sandbox.post(
        "/api/v4/leads",
        json=[
            {
                "custom_fields_values": [
                    {"field_id": field_id(state, "Miqdor"), "values": [{"value": 1500.5}]},
                    {"field_id": field_id(state, "Qayta aloqa"), "values": [{"value": True}]},
                    {
                        "field_id": field_id(state, "Uchrashuv sanasi"),
                        "values": [{"value": "2024-05-01T10:00:00+05:00"}],
                    },
                    {
                        "field_id": qiziqish["id"],
                        "values": [
                            {"enum_id": qiziqish["enums"][0]["id"]},
                            {"value": qiziqish["enums"][1]["value"]},
                        ],
                    },
                    {
                        "field_id": field_id(state, "Sayt sahifasi"),
                        "values": [{"value": "https://x.uz"}],
                    },
                ]
            }
        ],
        headers=auth,
    )
    lead_id = created.json()["_embedded"]["leads"][0]["id"]

    lead = (await sandbox.get(f"/api/v4/leads/{lead_id}", headers=auth)).json()

    values = {v["field_name"]: v["values"] for v in lead["custom_fields_values"]}
    assert values["Miqdor"] == [{"value": 1500.5}]
    assert values["Qayta aloqa"] == [{"value": True}]
    assert values["Uchrashuv sanasi"] == [{"value": 1714539600}]
    assert [v["enum_id"] for v in values["Qiziqishlar"]] == [
        qiziqish["enums"][0]["id"],
        qiziqish["enums"][1]["id"],
    ]
    assert values["Sayt sahifasi"] == [{"value": "https://x.uz"}]


async def test_empty_write_is_400_request_data_can_not_be_empty(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    for content in (b"", b"[]"):
        response = await sandbox.post(
            "/api/v4/leads",
            content=content,
            headers={**auth, "Content-Type": "application/json"},
        )
        assert response.status_code == 400
        assert response.json() == {
            "title": "Bad Request",
            "type": "https://httpstatus.es/400",
            "status": 400,
            "detail": "Request data can not be empty",
        }


async def test_more_than_250_items_is_422(sandbox: httpx.AsyncClient, auth: dict[str, str]) -> None:
    response = await sandbox.post(
        "/api/v4/leads", json=[{"name": str(i)} for i in range(251)], headers=auth
    )

    assert response.status_code == 422
    assert response.json() == {
        "title": "Unprocessable Entity",
        "type": "https://httpstatus.es/422",
        "status": 422,
        "detail": "Limit 250 per page",
    }


async def test_lead_list_paginates_and_is_204_when_empty(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    assert (await sandbox.get("/api/v4/leads", headers=auth)).status_code == 204
    await sandbox.post("/api/v4/leads", json=[{"name": f"L{i}"} for i in range(5)], headers=auth)

    first = (await sandbox.get("/api/v4/leads", params={"limit": 2}, headers=auth)).json()
    last = (await sandbox.get("/api/v4/leads", params={"limit": 2, "page": 3}, headers=auth)).json()

    assert first["_page"] == 1
    assert [lead["name"] for lead in first["_embedded"]["leads"]] == ["L0", "L1"]
    assert "next" in first["_links"]
    assert [lead["name"] for lead in last["_embedded"]["leads"]] == ["L4"]
    assert "next" not in last["_links"]


async def test_lead_query_and_unknown_lead(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await sandbox.post(
        "/api/v4/leads", json=[{"name": "Premium buyurtma"}, {"name": "Boshqa"}], headers=auth
    )

    found = (await sandbox.get("/api/v4/leads", params={"query": "premium"}, headers=auth)).json()
    missing = await sandbox.get("/api/v4/leads/999", headers=auth)

    assert [lead["name"] for lead in found["_embedded"]["leads"]] == ["Premium buyurtma"]
    assert missing.status_code == 204


async def test_contact_search_by_phone_and_email(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    alisher = await create_contact(
        sandbox,
        auth,
        name="Alisher Navoi",
        custom_fields_values=[
            phone("+998901234567"),
            {"field_code": "EMAIL", "values": [{"value": "alisher@example.uz"}]},
        ],
    )
    await create_contact(sandbox, auth, name="Bobur", custom_fields_values=[phone("+998935550000")])

    by_phone = await sandbox.get("/api/v4/contacts", params={"query": "901234567"}, headers=auth)
    by_email = await sandbox.get("/api/v4/contacts", params={"query": "alisher@"}, headers=auth)
    nothing = await sandbox.get("/api/v4/contacts", params={"query": "+7999"}, headers=auth)

    assert [c["id"] for c in by_phone.json()["_embedded"]["contacts"]] == [alisher]
    assert [c["id"] for c in by_email.json()["_embedded"]["contacts"]] == [alisher]
    assert nothing.status_code == 204
    assert nothing.content == b""


async def test_contact_phone_is_stored_with_its_enum(
    sandbox: httpx.AsyncClient, auth: dict[str, str], state: SandboxState
) -> None:
    contact_id = await create_contact(
        sandbox,
        auth,
        first_name="Dilnoza",
        last_name="Karimova",
        custom_fields_values=[{"field_code": "PHONE", "values": [{"value": "+998901112233"}]}],
    )

    contact = (await sandbox.get(f"/api/v4/contacts/{contact_id}", headers=auth)).json()

    assert contact["name"] == "Dilnoza Karimova"
    phone_field = next(f for f in state.custom_fields["contacts"] if f["code"] == "PHONE")
    (stored,) = contact["custom_fields_values"]
    assert stored == {
        "field_id": phone_field["id"],
        "field_name": phone_field["name"],
        "field_code": "PHONE",
        "field_type": "multitext",
        "values": [
            {
                "value": "+998901112233",
                "enum_id": phone_field["enums"][0]["id"],
                "enum_code": "WORK",
            }
        ],
    }


async def test_unknown_phone_kind_is_not_supported(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await sandbox.post(
        "/api/v4/contacts",
        json=[{"name": "x", "custom_fields_values": [phone("+998", "MOBILE")]}],
        headers=auth,
    )

    assert response.json()["validation-errors"][0]["errors"][0]["path"] == (
        "custom_fields_values.0.values.0.enum_code"
    )


async def test_unknown_contact_is_204(sandbox: httpx.AsyncClient, auth: dict[str, str]) -> None:
    assert (await sandbox.get("/api/v4/contacts/123", headers=auth)).status_code == 204


async def test_contact_with_leads(sandbox: httpx.AsyncClient, auth: dict[str, str]) -> None:
    contact_id = await create_contact(sandbox, auth, name="Aziz")
    created = await sandbox.post(
        "/api/v4/leads", json=[{"_embedded": {"contacts": [{"id": contact_id}]}}], headers=auth
    )
    lead_id = created.json()["_embedded"]["leads"][0]["id"]

    contact = (
        await sandbox.get(f"/api/v4/contacts/{contact_id}", params={"with": "leads"}, headers=auth)
    ).json()

    assert [lead["id"] for lead in contact["_embedded"]["leads"]] == [lead_id]


async def test_linking_an_unknown_contact_is_rejected(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await sandbox.post(
        "/api/v4/leads", json=[{"_embedded": {"contacts": [{"id": 5}]}}], headers=auth
    )

    assert response.json()["validation-errors"][0]["errors"][0]["path"] == "_embedded.contacts.0.id"
