"""Matching, planning, memory and the direct-mode item composed against the amoCRM sandbox: a
returning customer's lead goes to the contact amoCRM already has, which keeps its values."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from amogate.amocrm.auth import BearerAuth
from amogate.amocrm.client import AmoClient
from amogate.amocrm.models import contact_card
from amogate.amocrm.oauth import exchange_code, token_url
from amogate.amocrm.sandbox.runner import SandboxServer
from amogate.amocrm.sandbox.seed import MAIN_PIPELINE_ID
from amogate.contacts.cache import InMemoryContactMemory
from amogate.contacts.matching import parse_dedup
from amogate.leads.complex_item import find_by_delivery_id
from tests.amocrm.sandbox_support import Calls, RefreshingProvider, Sandbox
from tests.contacts.flow import DirectFlow, phone_keys

JSON = dict[str, Any]
STAGE = 71_000_013


def lead(n: int = 1, **contact: Any) -> JSON:
    return {
        "pipeline_id": MAIN_PIPELINE_ID,
        "lead": {"name": f"Lead {n}", "status_id": STAGE, "tags": ["site"]},
        "contact": {"name": f"Visitor {n}", **contact},
        "comment": "hello",
    }


def contact(name: str, *phones: str, emails: tuple[str, ...] = ()) -> JSON:
    values: list[JSON] = []
    if phones:
        values.append({"field_code": "PHONE", "values": [{"value": p} for p in phones]})
    if emails:
        values.append({"field_code": "EMAIL", "values": [{"value": e} for e in emails]})
    return {"name": name, "custom_fields_values": values}


@pytest.fixture
def flow(client: AmoClient) -> DirectFlow:
    return DirectFlow(client, InMemoryContactMemory())


async def test_a_lead_with_a_national_number_is_linked_to_the_contact_stored_formatted(
    client: AmoClient, flow: DirectFlow
) -> None:
    [stored] = await client.create_contacts([contact("Alisher Navoi", "+998 90 123-45-67")])
    before = await client.get_contact(stored["id"])

    [sent] = await flow.send([lead(phone="901234567")])

    assert sent.contact_id == stored["id"]
    assert sent.match is not None
    assert not sent.match.ambiguous
    after = await client.get_contact(stored["id"])
    assert after["name"] == "Alisher Navoi"
    assert after["custom_fields_values"] == before["custom_fields_values"]
    assert after["updated_at"] == before["updated_at"]
    created = await client.get_lead(sent.lead_id, with_=["contacts"])
    assert (created["pipeline_id"], created["status_id"]) == (MAIN_PIPELINE_ID, STAGE)
    assert [c["id"] for c in created["_embedded"]["contacts"]] == [stored["id"]]
    assert flow.searches == ["901234567"]


async def test_a_lead_matched_by_email_is_linked_and_its_new_phone_added_beside_the_old(
    client: AmoClient, flow: DirectFlow
) -> None:
    [stored] = await client.create_contacts(
        [contact("Olga", "+998 71 200-00-00", emails=("Olga@Example.uz",))]
    )
    before = contact_card(await client.get_contact(stored["id"]))

    [sent] = await flow.send([lead(email="olga@example.uz", phone="+998935554433")])

    after = contact_card(await client.get_contact(stored["id"]))
    assert sent.contact_id == stored["id"]
    assert after.name == "Olga"
    assert after.emails == before.emails
    assert [p.value for p in after.phones] == ["+998 71 200-00-00", "+998935554433"]
    assert after.phones[0] == before.phones[0]


async def test_a_phone_that_only_shares_a_substring_gets_a_new_contact(
    client: AmoClient, flow: DirectFlow
) -> None:
    [stored] = await client.create_contacts([contact("Someone else", "+1 (901) 234-5670")])
    assert await client.search_contacts("901234567")  # amoCRM's search does hit it

    [sent] = await flow.send([lead(phone="+998901234567")])

    assert sent.match is None
    assert sent.contact_id != stored["id"]
    other = await client.get_contact(stored["id"])
    assert contact_card(other).phones[0].value == "+1 (901) 234-5670"


async def test_two_matching_contacts_give_the_latest_updated_and_the_lead_says_so(
    client: AmoClient, flow: DirectFlow, sandbox: Sandbox
) -> None:
    [older] = await client.create_contacts([contact("Old", "998901234567")])
    sandbox.clock.advance(60)
    [newer] = await client.create_contacts([contact("New", emails=("a@b.uz",))])

    [sent] = await flow.send([lead(phone="+998901234567", email="A@B.uz")])

    assert sent.match is not None
    assert sent.contact_id == newer["id"]
    assert sent.match.ambiguous is True
    assert sent.match.contact_ids == (newer["id"], older["id"])


async def test_twenty_leads_of_one_new_person_in_a_batch_share_one_new_contact(
    client: AmoClient, flow: DirectFlow
) -> None:
    bodies = [lead(n, phone="+998 90 765 43 21", email="new@example.uz") for n in range(20)]

    sent = await flow.send(bodies)

    contact_ids = {s.contact_id for s in sent}
    assert len(contact_ids) == 1
    assert len({s.lead_id for s in sent}) == 20
    assert flow.searches == ["907654321", "new@example.uz"]
    [only] = contact_ids
    leads = await client.list_leads(with_=["contacts"], limit=250)
    linked = [x for x in leads if [c["id"] for c in x["_embedded"]["contacts"]] == [only]]
    assert len(linked) == 20


async def test_a_contact_hidden_in_unsorted_is_found_by_memory_without_a_search(
    client: AmoClient, flow: DirectFlow, calls: Calls
) -> None:
    first = await flow.send([lead(1, phone="+998901112233")])
    # The same person again, through a form that went to Unsorted: its contact is hidden.
    [form] = await client.create_unsorted_forms(
        [
            {
                "source_name": "Sayt",
                "source_uid": "u-1",
                "metadata": {
                    "form_id": "f",
                    "form_name": "F",
                    "form_page": "https://example.uz",
                    "form_sent_at": 1_750_000_000,
                },
                "_embedded": {
                    "leads": [{"name": "L"}],
                    "contacts": [contact("Hidden", "+998945556677")],
                },
            }
        ]
    )
    assert form.contact_id is not None
    await flow.memory.remember_link("default", phone_keys("+998945556677"), form.contact_id)
    assert await client.search_contacts("945556677") == []
    searches_before = len(flow.searches)
    calls.clear()

    [again] = await flow.send([lead(2, phone="945556677")])
    [back] = await flow.send([lead(3, phone="+998 90 111 22 33")])

    assert again.contact_id == form.contact_id
    assert again.match is not None
    assert again.match.remembered
    assert back.contact_id == first[0].contact_id
    assert len(flow.searches) == searches_before
    assert [c[0] for c in calls if c[0] == "/api/v4/contacts"] == []


async def test_a_remembered_contact_that_was_deleted_is_forgotten_and_replaced(
    client: AmoClient,
    flow: DirectFlow,
    sandbox: Sandbox,
    provider: RefreshingProvider,
    calls: Calls,
) -> None:
    [form] = await client.create_unsorted_forms(
        [
            {
                "source_name": "Sayt",
                "source_uid": "u-2",
                "metadata": {
                    "form_id": "f",
                    "form_name": "F",
                    "form_page": "https://example.uz",
                    "form_sent_at": 1_750_000_000,
                },
                "_embedded": {
                    "leads": [{"name": "L"}],
                    "contacts": [contact("Hidden", "+998945550000")],
                },
            }
        ]
    )
    assert form.contact_id is not None
    await flow.memory.remember_link("default", phone_keys("+998945550000"), form.contact_id)
    declined = await sandbox.control.delete(
        f"/api/v4/leads/unsorted/{form.uid}/decline",
        headers={"Authorization": f"Bearer {provider.pair.access_token}"},
    )
    assert declined.status_code == 200
    calls.clear()

    sent = await flow.send_one_recovering(lead(phone="+998945550000"))

    complex_calls = [c[1] for c in calls if c[0] == "/api/v4/leads/complex"]
    assert complex_calls == [400, 200]  # the remembered id refused, then a new contact
    assert flow.searches == ["945550000"]  # searched only after forgetting
    assert sent.contact_id != form.contact_id
    assert sent.match is None
    known = await flow.memory.recall("default", phone_keys("+998945550000"))
    assert known.links[phone_keys("+998945550000")[0]].contact_id == sent.contact_id


async def test_with_matching_off_every_lead_gets_its_own_new_contact(
    client: AmoClient, flow: DirectFlow
) -> None:
    [stored] = await client.create_contacts([contact("Alisher", "+998901234567")])
    flow.dedup = parse_dedup("off")

    sent = await flow.send([lead(1, phone="+998901234567"), lead(2, phone="+998901234567")])

    assert stored["id"] not in {s.contact_id for s in sent}
    assert len({s.contact_id for s in sent}) == 2
    assert flow.searches == []


async def test_a_direct_lead_is_found_again_by_its_delivery_id(
    client: AmoClient, flow: DirectFlow, sandbox: Sandbox
) -> None:
    received_at = int(sandbox.clock())
    await flow.send([lead(1, phone="+998901000001")])
    [wanted] = await flow.send([lead(2, phone="+998901000002")])
    await flow.send([lead(3, phone="+998901000003")])

    page = await client.list_leads(created_at={"from": received_at}, order={"created_at": "desc"})
    found = find_by_delivery_id(page, wanted.delivery_id)

    assert found is not None
    assert found["id"] == wanted.lead_id
    fields = await client.list_custom_fields("leads")
    [delivery_field] = [f for f in fields if f["code"] == "AMOGATE_DELIVERY_ID"]
    assert delivery_field["is_api_only"] is True


# --- over TCP ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(rate_limit=0) as running:
        yield running


async def test_a_returning_customer_is_linked_over_a_real_connection(
    server: SandboxServer,
) -> None:
    config = server.config
    async with httpx.AsyncClient(base_url=server.url, timeout=5) as http:
        (await http.post("/_sandbox/reset")).raise_for_status()
        code = (await http.post("/_sandbox/authorize", json={})).json()["code"]
        pair = await exchange_code(
            http,
            token_url=token_url(config.referer, base_url=config.public_url),
            code=code,
            client_id=config.client_id,
            client_secret=config.client_secret,
            redirect_uri=config.redirect_uri,
        )

    class Static:
        async def access_token(self) -> str:
            return pair.access_token

        async def refresh_after_401(self, rejected_token: str) -> str | None:
            return None

    async with AmoClient(server.url, auth=BearerAuth(Static())) as client:
        [stored] = await client.create_contacts([contact("Alisher Navoi", "+998 90 123-45-67")])
        flow = DirectFlow(client, InMemoryContactMemory())

        [sent] = await flow.send([lead(phone="90 123 45 67", email="alisher@example.com")])

        after = contact_card(await client.get_contact(stored["id"]))
    assert sent.contact_id == stored["id"]
    assert after.name == "Alisher Navoi"
    assert [p.value for p in after.phones] == ["+998 90 123-45-67"]
    assert [e.value for e in after.emails] == ["alisher@example.com"]
