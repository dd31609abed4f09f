"""A real third-party amoCRM client from PyPI uses the sandbox as if it were amoCRM.

The library is `aioamocrm` (async, httpx, typed models, its own 7 rps limiter, OAuth2 with
rotation). It takes the account address as `base_url`, so it is pointed at a `SandboxServer`
process and talks to it over TCP exactly as to `https://{subdomain}.amocrm.ru`; nothing in it
is patched. (`amocrm-api-wrapper` 1.0.1 was tried first: every GET it sends fails inside the
library with `TypeError: Client.get() got an unexpected keyword argument 'json'`, on any httpx.)
The sandbox keeps amoCRM's default budget of 7 requests per second here, so these tests also
show that a client spacing its calls as amoCRM asks never meets a 429.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from amogate.amocrm.sandbox.runner import SandboxServer
from tests.support.ci import under_ci

if importlib.util.find_spec("aioamocrm") is None:
    REASON = "aioamocrm is not installed (pip install -e '.[dev]')"
    if under_ci():
        pytest.fail(f"{REASON} (CI=true: this test must run, not be skipped)", pytrace=False)
    print(f"\nSKIP {__name__}: {REASON}")
    pytest.skip(REASON, allow_module_level=True)

from aioamocrm import AmoCRMClient, AuthError, MemoryTokenStorage, NotFoundError, OAuth2


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(rate_limit=7) as running:
        yield running


@pytest.fixture
async def control(server: SandboxServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=5) as client:
        (await client.post("/_sandbox/reset")).raise_for_status()
        yield client
        assert (await client.get("/_sandbox/stats")).json()["rate_limited"] == 0


@pytest.fixture
async def amo(server: SandboxServer, control: httpx.AsyncClient) -> AsyncIterator[AmoCRMClient]:
    """The library's client, connected by its own code exchange."""
    config = server.config
    auth = OAuth2(config.client_id, config.client_secret, config.redirect_uri)
    async with AmoCRMClient(auth=auth, base_url=server.url) as client:
        code = (await control.post("/_sandbox/authorize", json={})).json()["code"]
        await client.exchange_code(code)
        yield client


async def test_account_and_pipelines(amo: AmoCRMClient) -> None:
    account = await amo.account.get(with_=["datetime_settings"])
    pipelines = await amo.pipelines.list()

    assert account.subdomain == "sandbox"
    assert account.id == 31_207_511
    assert [p.is_main for p in pipelines] == [True, False]
    statuses = await amo.pipelines.statuses(pipelines[0].id or 0)
    assert [s.id for s in statuses][-2:] == [142, 143]


async def test_custom_fields_across_all_pages(
    amo: AmoCRMClient, control: httpx.AsyncClient
) -> None:
    fields = [field async for field in amo.leads.custom_fields.iterate(limit=20)]
    contact_fields = [field async for field in amo.contacts.custom_fields.iterate()]

    assert len(fields) >= 60
    assert len({f.id for f in fields}) == len(fields)
    assert {"UTM_SOURCE", "UTM_MEDIUM"} <= {f.code for f in fields}
    assert {"PHONE", "EMAIL"} <= {f.code for f in contact_fields}
    pages = [
        e["query"]
        for e in (await control.get("/_sandbox/requests")).json()
        if e["path"] == "/api/v4/leads/custom_fields"
    ]
    assert len(pages) == -(-len(fields) // 20)  # followed `next` exactly to the last page


async def test_lead_with_tag_and_field_contact_search_and_note(amo: AmoCRMClient) -> None:
    fields = [field async for field in amo.leads.custom_fields.iterate()]
    mahsulot = next(f for f in fields if f.name == "Mahsulot turi")
    (contact_ref,) = await amo.contacts.create(
        [
            {
                "name": "Alisher Navoi",
                "custom_fields_values": [
                    {
                        "field_code": "PHONE",
                        "values": [{"value": "+998901234567", "enum_code": "MOB"}],
                    }
                ],
            }
        ]
    )
    lead_body: dict[str, Any] = {
        "name": "Yangi mijoz",
        "custom_fields_values": [{"field_id": mahsulot.id, "values": [{"value": "Premium"}]}],
        "_embedded": {"tags": [{"name": "website"}], "contacts": [{"id": contact_ref.id}]},
    }
    (lead_ref,) = await amo.leads.create([lead_body])
    (note_ref,) = await amo.leads.notes.create(
        [{"entity_id": lead_ref.id, "note_type": "common", "params": {"text": "Premium?"}}]
    )

    lead = await amo.leads.get(lead_ref.id or 0, with_=["contacts"])
    assert [t.name for t in lead.embedded.tags] == ["website"]
    assert lead.custom_fields_values is not None
    (value,) = lead.custom_fields_values
    assert value.field_name == "Mahsulot turi"
    assert value.values is not None
    assert value.values[0].value == "Premium"
    assert [c.id for c in lead.embedded.contacts] == [contact_ref.id]
    found = await amo.contacts.get_page(query="901234567")
    assert [c.id for c in found.items] == [contact_ref.id]
    nothing = await amo.contacts.get_page(query="+7000")
    assert nothing.items == []
    note = await amo.leads.notes.get(note_ref.id or 0, entity_id=lead_ref.id or 0)
    assert note.text == "Premium?"
    with pytest.raises(NotFoundError):
        await amo.leads.get(1)


async def test_token_refresh_rotates_and_revokes_the_old_pair(
    amo: AmoCRMClient, control: httpx.AsyncClient
) -> None:
    assert isinstance(amo.auth, OAuth2)
    storage = amo.auth.storage
    assert isinstance(storage, MemoryTokenStorage)
    before = await storage.load()
    assert before is not None

    after = await amo.auth.refresh(amo._endpoint)
    account = await amo.account.get()  # first use of the new pair

    assert account.subdomain == "sandbox"
    assert after.refresh_token != before.refresh_token
    assert await storage.load() == after
    stale = OAuth2(
        amo.auth.client_id,
        "sandbox-client-secret",
        amo.auth.redirect_uri,
        MemoryTokenStorage(before),
    )
    with pytest.raises(AuthError, match="revoked"):
        await stale.refresh(amo._endpoint)
    oauth = (await control.get("/_sandbox/stats")).json()["oauth"]
    assert oauth["refreshes_ok"] == 1
    assert oauth["revoked_refresh_presented"] == 1


async def test_library_refreshes_by_itself_after_a_401(
    amo: AmoCRMClient, control: httpx.AsyncClient
) -> None:
    (await control.post("/_sandbox/expire-tokens")).raise_for_status()

    account = await amo.account.get()

    statuses = [(e["path"], e["status"]) for e in (await control.get("/_sandbox/requests")).json()]
    assert account.subdomain == "sandbox"
    assert statuses[-3:] == [
        ("/api/v4/account", 401),
        ("/oauth2/access_token", 200),
        ("/api/v4/account", 200),
    ]
