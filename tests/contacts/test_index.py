"""The local contact index against the sandbox: built from every page of contacts, brought up
to date with only the contacts changed since, and given up for an account too large to list."""

from __future__ import annotations

from typing import Any

from amogate.amocrm.client import AmoClient
from amogate.contacts.index import ContactIndex
from amogate.contacts.matching import ContactKey, email_key, phone_key
from tests.amocrm.sandbox_support import Calls

JSON = dict[str, Any]


def card(name: str, phone: str = "", email: str = "") -> JSON:
    values: list[JSON] = []
    if phone:
        values.append({"field_code": "PHONE", "values": [{"value": phone}]})
    if email:
        values.append({"field_code": "EMAIL", "values": [{"value": email}]})
    return {"name": name, "custom_fields_values": values}


def key(text: str) -> ContactKey:
    found = phone_key(text) if text.startswith("+") else email_key(text)
    assert found is not None
    return found


async def test_the_index_holds_every_page_and_finds_numbers_however_they_were_written(
    client: AmoClient, calls: Calls
) -> None:
    for start in (0, 250):
        await client.create_contacts(
            [card(f"C{n}", f"+99871{n:07d}") for n in range(start, 250 + start)]
        )
    [written] = await client.create_contacts([card("Formatted", "8 (90) 123-45-67", "A@B.uz")])
    index = ContactIndex()
    calls.clear()

    assert await index.sync(client)

    assert len(index) == 501
    assert len([c for c in calls if c[0] == "/api/v4/contacts"]) == 3  # 250 + 250 + 1
    assert [c.id for c in index.candidates([key("+998901234567")])] == [written["id"]]
    assert [c.id for c in index.candidates([key("a@b.uz")])] == [written["id"]]
    assert index.candidates([key("+998901234568")]) == []


async def test_a_sync_reads_only_what_changed_and_drops_a_replaced_number(
    client: AmoClient, calls: Calls
) -> None:
    [kept] = await client.create_contacts([card("Kept", "+998901110000")])
    index = ContactIndex(refresh_interval=0)
    await index.sync(client)
    await client.update_contacts(
        [
            {
                "id": kept["id"],
                "custom_fields_values": [
                    {"field_code": "PHONE", "values": [{"value": "+998 90 222 00 00"}]}
                ],
            }
        ]
    )
    [added] = await client.create_contacts([card("Added", email="new@example.uz")])
    calls.clear()

    await index.sync(client)

    [(path, status)] = [(c[0], c[1]) for c in calls]
    assert (path, status) == ("/api/v4/contacts", 200)
    assert index.candidates([key("+998901110000")]) == []
    assert [c.id for c in index.candidates([key("+998902220000")])] == [kept["id"]]
    assert [c.id for c in index.candidates([key("new@example.uz")])] == [added["id"]]


async def test_an_account_too_large_to_list_is_not_indexed(client: AmoClient, calls: Calls) -> None:
    await client.create_contacts([card(f"C{n}", f"+99871{n:07d}") for n in range(250)])
    await client.create_contacts([card("One more", "+998712222222")])  # a second page
    index = ContactIndex(max_pages=1)

    assert not await index.sync(client)
    assert index.too_large
    assert not index.usable
    calls.clear()
    assert not await index.sync(client)
    assert calls == []  # not tried again
