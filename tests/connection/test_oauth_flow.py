"""Connecting amoCRM from a browser: /oauth/authorize → the sandbox's consent page → Allow or
Deny → /oauth/callback. State is single-use and expires; the callback's referer is checked
before our client secret goes anywhere."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from amogate.app import create_app
from amogate.connection.tokens import utcnow
from amogate.settings import Settings
from amogate.storage import accounts
from tests.conftest import TEST_API_KEY, open_app
from tests.support.gateway import SANDBOX_URL, Harness, connected_gateway

JSON_ACCEPT = {"Accept": "application/json"}
ADMIN_KEY = {"X-API-KEY": TEST_API_KEY}


def _form_fields(page: str) -> dict[str, str]:
    fields = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page)
    return {name: unescape(value) for name, value in fields}


async def _consent(h: Harness, decision: str = "allow") -> str:
    """Start at /oauth/authorize and click a button on the consent page, as a browser would.
    Returns the callback path and query the sandbox redirected to."""
    start = await h.gateway.get("/oauth/authorize", headers=ADMIN_KEY)
    assert start.status_code == 302
    consent = start.headers["location"]
    page = await h.sandbox.get(consent)
    assert page.status_code == 200
    form = {**_form_fields(page.text), "decision": decision}
    decided = await h.sandbox.post("/oauth/decide", data=form)
    assert decided.status_code == 302
    target = urlsplit(decided.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == (h.amo.settings.amo_redirect_uri)
    return f"{target.path}?{target.query}"


async def _token_calls(h: Harness) -> int:
    return len(await h.requests("/oauth2/access_token"))


async def test_authorize_redirects_to_the_consent_page_with_a_stored_state(
    settings: Settings,
) -> None:
    async with connected_gateway(settings, connect_account=False) as h:
        response = await h.gateway.get("/oauth/authorize", headers=ADMIN_KEY)

        location = urlsplit(response.headers["location"])
        query = parse_qs(location.query)
        assert response.status_code == 302
        assert f"{location.scheme}://{location.netloc}{location.path}" == f"{SANDBOX_URL}/oauth"
        assert query["client_id"] == ["sandbox-client-id"]
        assert query["mode"] == ["popup"]
        async with h.amo.database.transaction() as conn:
            assert await accounts.consume_oauth_state(conn, query["state"][0], utcnow())


async def test_allowing_access_in_the_browser_connects_the_account(settings: Settings) -> None:
    async with connected_gateway(settings, connect_account=False) as h:
        callback = await _consent(h)
        assert parse_qs(urlsplit(callback).query)["referer"] == ["sandbox.test"]

        response = await h.gateway.get(callback, headers=JSON_ACCEPT)
        status = await h.gateway.get("/oauth/status")

        assert response.status_code == 200
        assert response.json()["data"]["account_id"] is not None
        assert response.json()["data"]["base_domain"] == "sandbox.test"
        assert status.json()["data"]["status"] == "authorized"
        assert status.json()["data"]["token_kind"] == "oauth"
        row = await h.amo.tokens.status()
        assert row is not None
        assert row.access_token
        assert row.refresh_token
        assert row.access_token not in status.text
        assert row.refresh_token not in status.text
        assert "token" not in {k for k, v in status.json()["data"].items() if isinstance(v, str)}


async def test_the_callback_page_is_html_for_a_browser(settings: Settings) -> None:
    async with connected_gateway(settings, connect_account=False) as h:
        callback = await _consent(h)

        response = await h.gateway.get(callback, headers={"Accept": "text/html"})

        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert "amoCRM connected" in response.text
        row = await h.amo.tokens.status()
        assert row is not None
        assert row.state == accounts.CONNECTED


async def test_reconnecting_links_back_to_the_admin_page_and_forgets_cached_lists(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, admin_password="admin-password-123") as h:
        fetched = await h.gateway.get("/api/v1/info/pipelines", headers=api_headers)
        assert fetched.headers["x-cache"] == "MISS"
        assert (await h.gateway.get("/api/v1/info/pipelines", headers=api_headers)).headers[
            "x-cache"
        ] == "HIT"

        callback = await _consent(h)
        page = await h.gateway.get(callback, headers={"Accept": "text/html"})

        assert page.status_code == 200
        assert 'href="/admin"' in page.text
        after = await h.gateway.get("/api/v1/info/pipelines", headers=api_headers)
        assert after.headers["x-cache"] == "MISS"


async def test_a_replayed_state_is_rejected(settings: Settings) -> None:
    async with connected_gateway(settings, connect_account=False) as h:
        callback = await _consent(h)
        first = await h.gateway.get(callback, headers=JSON_ACCEPT)

        replay = await h.gateway.get(callback, headers=JSON_ACCEPT)

        assert first.status_code == 200
        assert replay.status_code == 400
        assert "state" in replay.json()["error"]
        assert await _token_calls(h) == 1


async def test_an_expired_state_is_rejected_before_any_token_call(settings: Settings) -> None:
    async with connected_gateway(settings, connect_account=False) as h:
        issued = utcnow() - timedelta(minutes=30)
        async with h.amo.database.transaction() as conn:
            await accounts.add_oauth_state(
                conn, "old-state", issued, issued + timedelta(minutes=15)
            )
        code = (await h.sandbox.post("/_sandbox/authorize", json={"state": "old-state"})).json()

        response = await h.gateway.get(
            "/oauth/callback",
            params={"code": code["code"], "state": "old-state", "referer": code["referer"]},
            headers=JSON_ACCEPT,
        )

        assert response.status_code == 400
        assert "expired" in response.json()["error"]
        assert await _token_calls(h) == 0


async def test_a_callback_without_a_state_is_rejected(settings: Settings) -> None:
    async with connected_gateway(settings, connect_account=False) as h:
        code = (await h.sandbox.post("/_sandbox/authorize", json={})).json()

        response = await h.gateway.get(
            "/oauth/callback",
            params={"code": code["code"], "referer": code["referer"]},
            headers=JSON_ACCEPT,
        )

        assert response.status_code == 400
        assert await _token_calls(h) == 0


async def test_denying_access_leaves_the_account_unconnected(settings: Settings) -> None:
    async with connected_gateway(settings, connect_account=False) as h:
        callback = await _consent(h, decision="deny")
        assert parse_qs(urlsplit(callback).query)["error"] == ["access_denied"]

        response = await h.gateway.get(callback)
        status = await h.gateway.get("/oauth/status")

        assert response.status_code == 400
        assert "denied" in response.text
        assert status.json()["data"]["status"] == "not_authorized"
        assert await _token_calls(h) == 0


@pytest.mark.parametrize(
    "referer",
    ["evil.example", "sandbox.test.evil.com", "evil.com/.amocrm.ru", "x.amocrm.ru.evil.com"],
)
async def test_a_forged_referer_is_rejected_before_any_token_call(
    settings: Settings, referer: str
) -> None:
    async with connected_gateway(settings, connect_account=False) as h:
        callback = await _consent(h)
        query = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
        query["referer"] = referer

        response = await h.gateway.get("/oauth/callback", params=query, headers=JSON_ACCEPT)

        assert response.status_code == 400
        assert "referer" in response.json()["error"].lower()
        assert await _token_calls(h) == 0
        row = await h.amo.tokens.status()
        assert row is None or not row.has_token


async def test_a_used_code_is_refused_with_amocrms_reason(settings: Settings) -> None:
    async with connected_gateway(settings, connect_account=False) as h:
        code = (await h.sandbox.post("/_sandbox/authorize", json={})).json()["code"]
        for _ in range(2):
            start = await h.gateway.get("/oauth/authorize", headers=ADMIN_KEY)
            state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
            response = await h.gateway.get(
                "/oauth/callback",
                params={"code": code, "state": state, "referer": "sandbox.test"},
                headers=JSON_ACCEPT,
            )

        assert response.status_code == 400
        assert "revoked" in response.json()["error"]


@pytest.mark.parametrize(
    ("domain", "consent"),
    [
        ("mycompany.amocrm.ru", "https://www.amocrm.ru/oauth"),
        ("mycompany.kommo.com", "https://www.kommo.com/oauth"),
    ],
)
async def test_the_consent_page_is_on_the_shared_host_of_the_accounts_region(
    settings_factory: Callable[..., Settings], domain: str, consent: str
) -> None:
    settings = settings_factory(
        amo_domain=domain, amo_client_id="client-1", amo_client_secret="secret-1"
    )
    async for client in open_app(create_app(settings, background=False)):
        response = await client.get("/oauth/authorize", headers=ADMIN_KEY)

        location = response.headers["location"]
        assert response.status_code == 302
        assert location.startswith(consent + "?")
        assert parse_qs(urlsplit(location).query)["client_id"] == ["client-1"]


async def test_status_without_amocrm_configured_says_so(client: httpx.AsyncClient) -> None:
    response = await client.get("/oauth/status")

    data: dict[str, Any] = response.json()["data"]
    assert response.status_code == 200
    assert data["configured"] is False
    assert data["has_token"] is False


async def test_with_amo_domain_a_referer_of_another_account_never_receives_the_secret(
    settings: Settings,
) -> None:
    """The reported attack with a real account host: AMO_DOMAIN names the account, and a
    callback names another amoCRM host. The sandbox answers for every host here, so a token
    call to the attacker's host would succeed — it must never be made."""
    async with connected_gateway(settings, amo_base_url="", amo_domain="mycompany.amocrm.ru") as h:
        before = await h.amo.tokens.status()
        calls = await _token_calls(h)
        start = await h.gateway.get("/oauth/authorize", headers=ADMIN_KEY)
        state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
        code = (await h.sandbox.post("/_sandbox/authorize", json={"state": state})).json()

        response = await h.gateway.get(
            "/oauth/callback",
            params={"code": code["code"], "state": state, "referer": "attacker.amocrm.ru"},
            headers=JSON_ACCEPT,
        )

        assert start.headers["location"].startswith("https://www.amocrm.ru/oauth?")
        assert response.status_code == 400
        assert "referer" in response.json()["error"].lower()
        assert await _token_calls(h) == calls
        after = await h.amo.tokens.status()
        assert before is not None
        assert after is not None
        assert (after.access_token, after.refresh_token) == (
            before.access_token,
            before.refresh_token,
        )
