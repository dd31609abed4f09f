"""Contact search, reads and updates, complex leads, users and field creation: the real client
against the in-process sandbox, faults and token refresh included."""

from __future__ import annotations

from typing import Any

import pytest

from amogate.amocrm.client import AmoClient
from amogate.amocrm.errors import AmoPermanentError, AmoRateLimitedError
from amogate.amocrm.models import ChannelValue, contact_card
from amogate.amocrm.sandbox.seed import MAIN_PIPELINE_ID, USERS
from tests.amocrm.sandbox_support import Calls, RefreshingProvider, Sandbox

JSON = dict[str, Any]
STAGE = 71_000_013  # "Bog'lanildi" of the main pipeline


def contact(name: str, *phones: str, emails: tuple[str, ...] = ()) -> JSON:
    values: list[JSON] = []
    if phones:
        values.append({"field_code": "PHONE", "values": [{"value": p} for p in phones]})
    if emails:
        values.append({"field_code": "EMAIL", "values": [{"value": e} for e in emails]})
    return {"name": name, "custom_fields_values": values}


def hidden_form(source_uid: str, phone: str) -> JSON:
    return {
        "source_name": "Sayt",
        "source_uid": source_uid,
        "metadata": {
            "form_id": "f",
            "form_name": "F",
            "form_page": "https://example.uz",
            "form_sent_at": 1_750_000_000,
        },
        "_embedded": {"leads": [{"name": "L"}], "contacts": [contact("Hidden", phone)]},
    }


async def test_a_phone_stored_with_formatting_is_found_by_its_national_number(
    client: AmoClient,
) -> None:
    [stored] = await client.create_contacts([contact("Alisher", "+998 90 123-45-67")])
    await client.create_contacts([contact("Other", "+998 91 765-43-21")])

    hits = await client.search_contacts("901234567")

    assert [h["id"] for h in hits] == [stored["id"]]
    card = contact_card(hits[0])
    assert card.name == "Alisher"
    assert card.phones[0].value == "+998 90 123-45-67"
    assert card.phones[0].enum_code == "WORK"
    assert card.updated_at > 0


async def test_a_search_without_a_hit_is_an_empty_list_not_an_error(client: AmoClient) -> None:
    await client.create_contacts([contact("Alisher", "+998901234567")])

    assert await client.search_contacts("79995551122") == []


async def test_get_contacts_lists_visible_contacts_and_leaves_out_hidden_ones(
    client: AmoClient,
) -> None:
    created = await client.create_contacts([contact("A", "+998901111111"), contact("B")])
    [unsorted] = await client.create_unsorted_forms([hidden_form("u-1", "+998902222222")])
    assert unsorted.contact_id is not None
    ids = [c["id"] for c in created]

    found = await client.get_contacts([*ids, unsorted.contact_id, 999_999_999])

    assert sorted(c["id"] for c in found) == sorted(ids)
    assert (await client.get_contact(unsorted.contact_id))["is_unsorted"] is True


async def test_update_contacts_replaces_only_the_fields_given(client: AmoClient) -> None:
    [stored] = await client.create_contacts(
        [contact("Alisher", "+998 90 123-45-67", emails=("a@example.uz",))]
    )
    before = contact_card(await client.get_contact(stored["id"]))
    kept = before.phones[0]

    [result] = await client.update_contacts(
        [
            {
                "id": stored["id"],
                "custom_fields_values": [
                    {
                        "field_code": "PHONE",
                        "values": [
                            {"value": kept.value, "enum_id": kept.enum_id},
                            {"value": "+998935554433", "enum_code": "MOB"},
                        ],
                    }
                ],
            }
        ]
    )

    after = contact_card(await client.get_contact(stored["id"]))
    assert result.id == stored["id"]
    assert result.updated_at == after.updated_at
    assert after.phones == (
        kept,
        ChannelValue("+998935554433", after.phones[1].enum_id, "MOB"),
    )
    assert after.emails == before.emails
    assert after.name == "Alisher"


async def test_a_complex_lead_lands_in_its_stage_and_links_a_contact_by_id(
    client: AmoClient,
) -> None:
    [stored] = await client.create_contacts([contact("Alisher", "+998901234567")])

    results = await client.create_leads_complex(
        [
            {
                "name": "Direct",
                "pipeline_id": MAIN_PIPELINE_ID,
                "status_id": STAGE,
                "request_id": "d-1",
                "_embedded": {"contacts": [{"id": stored["id"]}]},
            },
            {"name": "New person", "_embedded": {"contacts": [contact("Olga", "+79995551122")]}},
        ]
    )

    linked, created = results
    assert linked.request_ids == ("d-1",)
    assert linked.contact_id == stored["id"]
    assert linked.merged is False
    assert created.request_ids == ("1",)
    assert created.contact_id not in (None, stored["id"])
    lead = await client.get_lead(linked.lead_id, with_=["contacts"])
    assert (lead["pipeline_id"], lead["status_id"]) == (MAIN_PIPELINE_ID, STAGE)
    assert [c["id"] for c in lead["_embedded"]["contacts"]] == [stored["id"]]


async def test_a_complex_lead_linking_an_unknown_contact_is_refused_on_that_path(
    client: AmoClient,
) -> None:
    with pytest.raises(AmoPermanentError) as caught:
        await client.create_leads_complex(
            [{"name": "x", "request_id": "d-9", "_embedded": {"contacts": [{"id": 999_999_999}]}}]
        )

    [item] = caught.value.validation_errors
    assert item.request_id == "d-9"
    assert [e.path for e in item.errors] == ["_embedded.contacts.0.id"]


async def test_users_are_listed(client: AmoClient) -> None:
    users = await client.list_users()

    assert [(u["id"], u["name"], u["email"]) for u in users] == USERS


async def test_a_created_api_only_field_can_carry_an_id_that_finds_the_lead_again(
    client: AmoClient, sandbox: Sandbox
) -> None:
    [field] = await client.create_custom_fields(
        "leads", [{"name": "Id", "type": "text", "code": "MY_ID", "is_api_only": True}]
    )
    since = int(sandbox.clock())
    await client.create_leads_complex(
        [
            {
                "name": "x",
                "custom_fields_values": [{"field_code": "MY_ID", "values": [{"value": "q"}]}],
            }
        ]
    )

    recent = await client.list_leads(created_at={"from": since}, order={"created_at": "desc"})
    older = await client.list_leads(created_at={"to": since - 1})

    assert field["is_api_only"] is True
    assert [lead["name"] for lead in recent] == ["x"]
    assert older == []


# --- faults and tokens ---------------------------------------------------------------------------


async def test_a_search_rides_out_one_429(
    sandbox: Sandbox, client: AmoClient, calls: Calls
) -> None:
    await client.create_contacts([contact("Alisher", "+998901234567")])
    await sandbox.fault("429", count=1)
    calls.clear()

    hits = await client.search_contacts("901234567")

    assert len(hits) == 1
    assert [c[1] for c in calls] == [429, 200]


async def test_a_contact_update_meeting_a_429_fails_and_changes_nothing(
    sandbox: Sandbox, client: AmoClient, calls: Calls
) -> None:
    [stored] = await client.create_contacts([contact("Alisher", "+998901234567")])
    await sandbox.fault("429", count=1)
    calls.clear()

    with pytest.raises(AmoRateLimitedError):
        await client.update_contacts([{"id": stored["id"], "name": "Changed"}])

    assert [c[1] for c in calls] == [429]
    assert (await client.get_contact(stored["id"]))["name"] == "Alisher"


async def test_a_complex_request_meeting_a_429_creates_nothing(
    sandbox: Sandbox, client: AmoClient
) -> None:
    await sandbox.fault("429", count=1)

    with pytest.raises(AmoRateLimitedError) as caught:
        await client.create_leads_complex([{"name": "during 429"}])

    assert caught.value.maybe_applied is False
    assert await client.list_leads("during 429") == []


async def test_an_expired_token_is_refreshed_for_searches_updates_and_complex_leads(
    sandbox: Sandbox, provider: RefreshingProvider, client: AmoClient
) -> None:
    [stored] = await client.create_contacts([contact("Alisher", "+998901234567")])

    await sandbox.control.post("/_sandbox/expire-tokens", json={})
    hits = await client.search_contacts("901234567")
    await sandbox.control.post("/_sandbox/expire-tokens", json={})
    [updated] = await client.update_contacts([{"id": stored["id"], "name": "Alisher N."}])
    await sandbox.control.post("/_sandbox/expire-tokens", json={})
    [lead] = await client.create_leads_complex(
        [{"name": "L", "_embedded": {"contacts": [{"id": stored["id"]}]}}]
    )

    assert [h["id"] for h in hits] == [stored["id"]]
    assert updated.id == stored["id"]
    assert lead.contact_id == stored["id"]
    assert provider.refreshes == 3
