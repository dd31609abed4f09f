"""Contact search like amoCRM (amocrm-api.md §4.10) and unsorted contacts hidden until accepted."""

from __future__ import annotations

import httpx

from amogate.amocrm.sandbox.seed import MAIN_PIPELINE_ID
from amogate.amocrm.sandbox.state import SandboxState
from tests.sandbox.helpers import (
    email_field,
    form_item,
    new_contact,
    new_lead,
    phone_field,
    search_ids,
)


async def test_digits_are_compared_as_typed_so_a_trunk_8_is_not_a_country_code_7(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    plus_seven = await new_contact(
        sandbox, auth, name="A", custom_fields_values=[phone_field("+79995551122")]
    )
    eight = await new_contact(
        sandbox, auth, name="B", custom_fields_values=[phone_field("89995551122")]
    )

    assert await search_ids(sandbox, auth, "+79995551122") == [plus_seven]
    assert await search_ids(sandbox, auth, "89995551122") == [eight]
    assert await search_ids(sandbox, auth, "9995551122") == [plus_seven, eight]
    assert await search_ids(sandbox, auth, "79995551122") == [plus_seven]


async def test_a_phone_is_found_by_its_national_part_whatever_its_formatting(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    formatted = await new_contact(
        sandbox, auth, name="Dilnoza", custom_fields_values=[phone_field("+998 90 123-45-67")]
    )
    bracketed = await new_contact(
        sandbox, auth, name="Jasur", custom_fields_values=[phone_field("(90) 123.45.67")]
    )

    assert await search_ids(sandbox, auth, "901234567") == [formatted, bracketed]
    assert await search_ids(sandbox, auth, "+998901234567") == [formatted]
    assert await search_ids(sandbox, auth, "90 123 45 67") == [formatted, bracketed]
    assert await search_ids(sandbox, auth, "998 90 123") == [formatted]


async def test_a_number_that_only_shares_a_part_is_not_found_the_other_way_round(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    short = await new_contact(
        sandbox, auth, name="X", custom_fields_values=[phone_field("901234567")]
    )

    # The stored number is a substring of the query, not the other way: no match.
    assert await search_ids(sandbox, auth, "+998901234567") == []
    assert await search_ids(sandbox, auth, "1234567") == [short]


async def test_query_looks_at_every_filled_field_and_ignores_letter_case(
    sandbox: httpx.AsyncClient, auth: dict[str, str], state: SandboxState
) -> None:
    telegram = next(f["id"] for f in state.custom_fields["contacts"] if f["name"] == "Telegram")
    city = next(f["id"] for f in state.custom_fields["contacts"] if f["name"] == "Shahar")
    target = await new_contact(
        sandbox,
        auth,
        first_name="Ольга",
        last_name="Смирнова",
        custom_fields_values=[
            email_field("Olga.Smirnova@Example.UZ"),
            {"field_code": "POSITION", "values": [{"value": "Bosh hisobchi"}]},
            {"field_id": telegram, "values": [{"value": "@olga_tg"}]},
            {"field_id": city, "values": [{"value": "Samarqand"}]},
        ],
    )
    await new_contact(sandbox, auth, name="Someone else", custom_fields_values=[phone_field("1")])

    for query in (
        "ольга",
        "СМИРНОВА",
        "ольга смирнова",
        "olga.smirnova@example.uz",
        "EXAMPLE.uz",
        "hisobchi",
        "@OLGA_TG",
        "samarqand",
    ):
        assert await search_ids(sandbox, auth, query) == [target], query
    assert await search_ids(sandbox, auth, "Toshkent") == []  # an option not chosen


async def test_no_match_is_204_with_an_empty_body(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await new_contact(sandbox, auth, name="Bobur")

    response = await sandbox.get("/api/v4/contacts", params={"query": "Humoyun"}, headers=auth)

    assert response.status_code == 204
    assert response.content == b""


async def test_search_pages_like_every_list_and_can_embed_leads(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    ids = [
        await new_contact(
            sandbox, auth, name=f"Mijoz {i}", custom_fields_values=[phone_field(f"+99890000000{i}")]
        )
        for i in range(5)
    ]
    lead_id = await new_lead(sandbox, auth, _embedded={"contacts": [{"id": ids[0]}]})

    first = await sandbox.get(
        "/api/v4/contacts",
        params={"query": "99890000000", "limit": "2", "with": "leads"},
        headers=auth,
    )
    body = first.json()
    last = await sandbox.get(
        "/api/v4/contacts", params={"query": "99890000000", "limit": "2", "page": "3"}, headers=auth
    )
    past = await sandbox.get(
        "/api/v4/contacts", params={"query": "99890000000", "limit": "2", "page": "4"}, headers=auth
    )

    assert [c["id"] for c in body["_embedded"]["contacts"]] == ids[:2]
    assert body["_embedded"]["contacts"][0]["_embedded"]["leads"][0]["id"] == lead_id
    assert body["_embedded"]["contacts"][1]["_embedded"]["leads"] == []
    assert "query=99890000000" in body["_links"]["next"]["href"]
    assert "page=2" in body["_links"]["next"]["href"]
    assert [c["id"] for c in last.json()["_embedded"]["contacts"]] == ids[4:]
    assert "next" not in last.json()["_links"]
    assert past.status_code == 204


async def test_the_contact_of_an_unsorted_item_is_hidden_until_it_is_accepted(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    created = await sandbox.post("/api/v4/leads/unsorted/forms", json=[form_item()], headers=auth)
    item = created.json()["_embedded"]["unsorted"][0]
    contact_id = item["_embedded"]["contacts"][0]["id"]

    assert await search_ids(sandbox, auth, "901234567") == []
    assert await search_ids(sandbox, auth, "alisher@example.uz") == []
    assert (await sandbox.get("/api/v4/contacts", headers=auth)).status_code == 204
    by_id = (await sandbox.get(f"/api/v4/contacts/{contact_id}", headers=auth)).json()
    assert by_id["is_unsorted"] is True

    accepted = await sandbox.post(f"/api/v4/leads/unsorted/{item['uid']}/accept", headers=auth)

    assert accepted.status_code == 200
    assert await search_ids(sandbox, auth, "901234567") == [contact_id]
    by_id = (await sandbox.get(f"/api/v4/contacts/{contact_id}", headers=auth)).json()
    assert by_id["is_unsorted"] is False


async def test_declining_deletes_the_hidden_contact_unless_another_lead_uses_it(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    lonely = await sandbox.post(
        "/api/v4/leads/unsorted/forms", json=[form_item("d-1")], headers=auth
    )
    shared = await sandbox.post(
        "/api/v4/leads/unsorted/forms", json=[form_item("d-2")], headers=auth
    )
    lonely_item = lonely.json()["_embedded"]["unsorted"][0]
    shared_item = shared.json()["_embedded"]["unsorted"][0]
    shared_contact = shared_item["_embedded"]["contacts"][0]["id"]
    # A returning customer's second lead goes straight to a stage with the same contact.
    complex_answer = await sandbox.post(
        "/api/v4/leads/complex",
        json=[{"name": "Again", "_embedded": {"contacts": [{"id": shared_contact}]}}],
        headers=auth,
    )
    assert complex_answer.json()[0]["contact_id"] == shared_contact

    for item in (lonely_item, shared_item):
        declined = await sandbox.delete(
            f"/api/v4/leads/unsorted/{item['uid']}/decline", headers=auth
        )
        assert declined.status_code == 200

    lonely_contact = lonely_item["_embedded"]["contacts"][0]["id"]
    assert (await sandbox.get(f"/api/v4/contacts/{lonely_contact}", headers=auth)).status_code == (
        204
    )
    assert await search_ids(sandbox, auth, "Alisher") == [shared_contact]


async def test_an_unsorted_item_links_an_existing_contact_by_id_which_stays_visible(
    sandbox: httpx.AsyncClient, auth: dict[str, str], state: SandboxState
) -> None:
    existing = await new_contact(
        sandbox, auth, name="Doimiy mijoz", custom_fields_values=[phone_field("+998 90 123-45-67")]
    )
    item = form_item("returning")
    item["_embedded"]["contacts"] = [{"id": existing, "name": "ignored"}]

    created = await sandbox.post("/api/v4/leads/unsorted/forms", json=[item], headers=auth)

    assert created.status_code == 200, created.text
    embedded = created.json()["_embedded"]["unsorted"][0]["_embedded"]
    assert embedded["contacts"][0]["id"] == existing
    lead_id = embedded["leads"][0]["id"]
    lead = (
        await sandbox.get(f"/api/v4/leads/{lead_id}", params={"with": "contacts"}, headers=auth)
    ).json()
    assert [c["id"] for c in lead["_embedded"]["contacts"]] == [existing]
    assert lead["pipeline_id"] == MAIN_PIPELINE_ID
    assert await search_ids(sandbox, auth, "901234567") == [existing]
    assert state.contacts[existing].name == "Doimiy mijoz"
    assert len(state.contacts) == 1


async def test_an_unknown_contact_id_in_an_unsorted_item_is_a_400_that_stores_nothing(
    sandbox: httpx.AsyncClient, auth: dict[str, str], state: SandboxState
) -> None:
    item = form_item()
    item["_embedded"]["contacts"] = [{"id": 20_999_999}]

    response = await sandbox.post("/api/v4/leads/unsorted/forms", json=[item], headers=auth)

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    (failed,) = response.json()["validation-errors"]
    assert failed["errors"] == [
        {
            "code": "NotSupportedChoice",
            "path": "_embedded.contacts.0.id",
            "detail": "The value you selected is not a valid choice.",
        }
    ]
    assert state.leads == {}
    assert state.unsorted == {}


async def test_leads_list_and_read_with_their_contacts(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    first = await new_contact(sandbox, auth, name="One")
    second = await new_contact(sandbox, auth, name="Two")
    linked = await new_lead(sandbox, auth, _embedded={"contacts": [{"id": first}, {"id": second}]})
    bare = await new_lead(sandbox, auth, name="No contact")

    listed = (await sandbox.get("/api/v4/leads", params={"with": "contacts"}, headers=auth)).json()
    plain = (await sandbox.get(f"/api/v4/leads/{linked}", headers=auth)).json()

    by_id = {lead["id"]: lead for lead in listed["_embedded"]["leads"]}
    assert [(c["id"], c["is_main"]) for c in by_id[linked]["_embedded"]["contacts"]] == [
        (first, True),
        (second, False),
    ]
    assert by_id[linked]["_embedded"]["contacts"][0]["_links"]["self"]["href"].endswith(
        f"/api/v4/contacts/{first}"
    )
    assert by_id[bare]["_embedded"]["contacts"] == []
    assert "contacts" not in plain["_embedded"]
