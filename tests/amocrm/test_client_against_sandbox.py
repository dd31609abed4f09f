"""The real client, OAuth helpers and limiter driven against the in-process amoCRM sandbox."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from amogate.amocrm.client import AmoClient
from amogate.amocrm.errors import (
    AmoAuthError,
    AmoBlockedError,
    AmoError,
    AmoPermanentError,
    AmoRateLimitedError,
    AmoRefreshRevokedError,
    AmoTimeoutError,
    AmoTransientError,
    AmoUnavailableError,
)
from amogate.amocrm.oauth import (
    account_host_allowed,
    consent_url,
    exchange_code,
    refresh_tokens,
)
from amogate.amocrm.ratelimit import TokenBucketLimiter
from amogate.amocrm.sandbox.config import SandboxConfig
from tests.amocrm.sandbox_support import (
    PUBLIC_URL,
    Calls,
    RefreshingProvider,
    Sandbox,
    make_client,
)


def form(source_uid: str, name: str = "Ivan") -> dict[str, Any]:
    return {
        "source_name": "Sayt example.uz",
        "source_uid": source_uid,
        "created_at": 1_750_000_000,
        "metadata": {
            "form_id": "contact_form",
            "form_name": "Obratnaya svyaz",
            "form_page": "https://example.uz/contacts",
            "form_sent_at": 1_750_000_000,
            "ip": "203.0.113.7",
        },
        "_embedded": {
            "leads": [{"name": f"Zayavka: {name}"}],
            "contacts": [
                {
                    "name": name,
                    "custom_fields_values": [
                        {"field_code": "PHONE", "values": [{"value": "+998901234567"}]}
                    ],
                }
            ],
        },
    }


# --- OAuth ------------------------------------------------------------------------------------


async def test_the_consent_page_and_callback_referer_work_with_the_sandbox(
    sandbox: Sandbox,
) -> None:
    url = consent_url(
        amo_domain="ignored.amocrm.ru",
        base_url=sandbox.config.public_url,
        client_id=sandbox.config.client_id,
        state="st",
    )

    page = await sandbox.control.get(url)

    assert page.status_code == 200
    assert sandbox.config.client_id in page.text
    assert account_host_allowed(
        sandbox.config.referer, known_domain=None, base_url=sandbox.config.public_url
    )


async def test_a_code_exchange_gives_a_pair_for_the_sandbox_host(
    sandbox: Sandbox, oauth_http: httpx.AsyncClient
) -> None:
    pair = await sandbox.exchange(oauth_http)

    assert pair.base_domain == sandbox.config.referer
    assert pair.access_token.startswith("eyJ")
    assert pair.access_token not in repr(pair)


async def test_a_code_exchanges_only_once(sandbox: Sandbox, oauth_http: httpx.AsyncClient) -> None:
    code = await sandbox.code()
    await exchange_code(oauth_http, code=code, **sandbox.credentials())

    with pytest.raises(AmoAuthError) as caught:
        await exchange_code(oauth_http, code=code, **sandbox.credentials())

    assert not isinstance(caught.value, AmoRefreshRevokedError)


async def test_a_wrong_client_secret_is_an_auth_error(
    sandbox: Sandbox, oauth_http: httpx.AsyncClient
) -> None:
    credentials = {**sandbox.credentials(), "client_secret": "wrong"}

    with pytest.raises(AmoAuthError) as caught:
        await exchange_code(oauth_http, code=await sandbox.code(), **credentials)

    assert caught.value.status == 401
    assert not isinstance(caught.value, AmoRefreshRevokedError)


async def test_an_expired_token_is_refreshed_once_and_the_old_refresh_token_dies(
    sandbox: Sandbox,
    provider: RefreshingProvider,
    client: AmoClient,
    oauth_http: httpx.AsyncClient,
) -> None:
    first = provider.pair
    await client.get_account()
    await sandbox.control.post("/_sandbox/expire-tokens", json={})

    account = await client.get_account()

    assert account["subdomain"] == sandbox.config.subdomain
    assert provider.refreshes == 1
    assert provider.pair.refresh_token != first.refresh_token
    with pytest.raises(AmoRefreshRevokedError):
        await refresh_tokens(oauth_http, refresh_token=first.refresh_token, **sandbox.credentials())


async def test_a_revoked_refresh_token_surfaces_from_an_api_call(
    sandbox: Sandbox, provider: RefreshingProvider, client: AmoClient
) -> None:
    stale = provider.pair
    await sandbox.control.post("/_sandbox/expire-tokens", json={})
    await client.get_account()  # refreshes and uses the new pair: `stale` is now revoked
    provider.pair = stale
    await sandbox.control.post("/_sandbox/expire-tokens", json={})

    with pytest.raises(AmoRefreshRevokedError):
        await client.get_account()


# --- reads ------------------------------------------------------------------------------------


async def test_all_pages_of_lead_custom_fields_are_read(
    sandbox: Sandbox, provider: RefreshingProvider, client: AmoClient, calls: Calls
) -> None:
    seeded = len(await client.list_custom_fields("leads"))
    headers = {"Authorization": f"Bearer {provider.pair.access_token}"}
    for start in (0, 250, 500):
        batch = [{"name": f"Field {i}", "type": "text"} for i in range(start, start + 250)]
        response = await sandbox.control.post(
            "/api/v4/leads/custom_fields", json=batch, headers=headers
        )
        assert response.status_code == 200, response.text
    calls.clear()

    fields = await client.list_custom_fields("leads")

    assert len(fields) == seeded + 750
    assert len({f["id"] for f in fields}) == len(fields)
    assert [c[:2] for c in calls] == [("/api/v4/leads/custom_fields", 200)] * 4


async def test_pipelines_and_the_account_are_read(client: AmoClient) -> None:
    pipelines = await client.list_pipelines()
    account = await client.get_account(with_=["datetime_settings"])

    one = await client.get_pipeline(pipelines[0]["id"])
    assert one["id"] == pipelines[0]["id"]
    assert {s["id"] for s in one["_embedded"]["statuses"]} >= {142, 143}
    assert "datetime_settings" in account["_embedded"]


async def test_a_search_without_hits_is_an_empty_list(client: AmoClient) -> None:
    assert await client.search_contacts("no-such-person-anywhere") == []


# --- unsorted and notes -----------------------------------------------------------------------


async def test_an_unsorted_form_is_created_and_found_again_by_its_source_uid(
    client: AmoClient,
) -> None:
    created = await client.create_unsorted_forms([form("other-1"), form("wanted-1", "Olga")])
    await client.create_unsorted_forms([form("other-2")])

    found = await client.find_unsorted_by_source_uid("wanted-1")

    assert [r.request_id for r in created] == ["0", "1"]
    assert found is not None
    assert found["uid"] == created[1].uid
    assert created[1].lead_id is not None
    assert created[1].contact_id is not None
    assert (await client.get_unsorted(created[1].uid))["source_uid"] == "wanted-1"
    lead = await client.get_lead(created[1].lead_id)
    assert lead["name"] == "Zayavka: Olga"
    assert await client.find_unsorted_by_source_uid("never-sent") is None


async def test_notes_are_added_to_a_lead_and_listed(client: AmoClient) -> None:
    [created] = await client.create_leads([{"name": "Lead with notes"}])
    lead_id = int(created["id"])

    notes = await client.add_notes(
        "leads",
        [{"entity_id": lead_id, "note_type": "common", "params": {"text": "Kommentariy"}}],
    )

    assert notes[0].entity_id == lead_id
    assert notes[0].request_id == "0"
    listed = await client.list_notes("leads", lead_id)
    assert [n["id"] for n in listed] == [notes[0].id]


async def test_a_validation_error_names_the_item_and_field(client: AmoClient) -> None:
    broken = form("broken")
    del broken["source_name"]

    with pytest.raises(AmoPermanentError) as caught:
        await client.create_unsorted_forms([broken])

    errors = caught.value.validation_errors
    assert caught.value.status == 400
    assert errors[0].request_id == "0"
    assert "source_name" in [e.path for e in errors[0].errors]


# --- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "kind"),
    [
        ("500", AmoTransientError),
        ("429", AmoRateLimitedError),
        ("html429", AmoRateLimitedError),
        ("403", AmoBlockedError),
        ("down", AmoUnavailableError),
        ("timeout", AmoTimeoutError),
    ],
)
async def test_every_fault_mode_is_mapped_to_the_right_error(
    sandbox: Sandbox, provider: RefreshingProvider, calls: Calls, mode: str, kind: type[AmoError]
) -> None:
    await sandbox.fault(mode, duration_s=60)
    timeout = httpx.Timeout(0.2)

    async with make_client(sandbox, provider, calls, timeout=timeout) as client:
        with pytest.raises(kind):
            await client.create_leads([{"name": "during a fault"}])

    assert len(calls) == 1
    assert calls[0][1] in (None, 403, 429, 500)


async def test_a_429_tells_how_long_to_wait(sandbox: Sandbox, client: AmoClient) -> None:
    await sandbox.fault("429", duration_s=30)

    with pytest.raises(AmoRateLimitedError) as caught:
        await client.get_account()

    assert caught.value.retry_after == 30


async def test_a_slow_answer_still_arrives(
    sandbox: Sandbox, client: AmoClient, calls: Calls
) -> None:
    await sandbox.fault("slow", duration_s=60, delay_s=0.05)

    account = await client.get_account()

    assert account["subdomain"] == sandbox.config.subdomain
    assert calls[-1][1] == 200
    assert calls[-1][2] >= 0.05


async def test_a_read_rides_out_a_fault_shorter_than_its_retry(
    sandbox: Sandbox, client: AmoClient, calls: Calls
) -> None:
    await sandbox.fault("500", count=1)

    account = await client.get_account()

    assert account["subdomain"] == sandbox.config.subdomain
    assert [c[1] for c in calls] == [500, 200]


async def test_a_connection_refused_write_was_surely_not_applied(
    sandbox: Sandbox, client: AmoClient
) -> None:
    await sandbox.fault("down", count=1)

    with pytest.raises(AmoUnavailableError) as caught:
        await client.create_unsorted_forms([form("down-1")])

    assert caught.value.maybe_applied is False
    assert await client.find_unsorted_by_source_uid("down-1") is None


async def test_after_a_403_the_limiter_keeps_the_client_away(
    sandbox: Sandbox, provider: RefreshingProvider, calls: Calls
) -> None:
    limiter = TokenBucketLimiter(7, clock=sandbox.clock, sleep=sandbox.sleep)
    await sandbox.fault("403", count=1)

    async with make_client(sandbox, provider, calls, limiter=limiter) as client:
        with pytest.raises(AmoBlockedError):
            await client.get_account()
        with pytest.raises(AmoBlockedError):
            await client.get_account()

    assert len(calls) == 1


async def test_the_limiter_keeps_the_client_inside_amocrms_budget(calls: Calls) -> None:
    # A sandbox that counts 7 requests per second, sharing the limiter's hand-moved clock.
    budgeted = Sandbox(SandboxConfig(public_url=PUBLIC_URL, rate_limit=7))
    async with budgeted.oauth_http() as http:
        pair = await budgeted.exchange(http)
        own = RefreshingProvider(budgeted, http, pair)
        limiter = TokenBucketLimiter(7, clock=budgeted.clock, sleep=budgeted.sleep)
        async with make_client(budgeted, own, calls, limiter=limiter) as client:
            for _ in range(30):
                await client.get_account()
    await budgeted.control.aclose()

    assert [c[1] for c in calls] == [200] * 30
