"""OAuth2 against amocrm-api.md §1: consent, code exchange, JWT shape, rotation, revocation."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from amogate.amocrm.sandbox.clock import ManualClock
from amogate.amocrm.sandbox.config import SandboxConfig
from amogate.amocrm.sandbox.state import SandboxState
from amogate.amocrm.sandbox.tokens import make_long_lived_token
from tests.sandbox.helpers import JSON, bearer, exchange, new_code, refresh, token_body

OAUTH_TYPE = "https://developers.amocrm.ru/v3/errors/OAuthProblemJson"
INVALID_REQUEST_DETAIL = "В запросе отсутствует ряд параметров или параметры невалидны"
UNAUTHORIZED = {
    "title": "Unauthorized",
    "type": "https://httpstatus.es/401",
    "status": 401,
    "detail": "Invalid user name or password",
}


def revoked_body() -> JSON:
    return {
        "hint": "Token has been revoked",
        "title": "Некорректный запрос",
        "type": OAUTH_TYPE,
        "status": 401,
        "detail": INVALID_REQUEST_DETAIL,
    }


def jwt_part(token: str, index: int) -> Any:
    part = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def query_of(location: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(location).query)


async def test_consent_page_offers_allow_and_deny(sandbox: httpx.AsyncClient) -> None:
    response = await sandbox.get(
        "/oauth", params={"client_id": "sandbox-client-id", "state": "xyz", "mode": "popup"}
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'value="allow"' in response.text
    assert 'value="deny"' in response.text


async def test_consent_page_for_unknown_client_is_an_error_page(
    sandbox: httpx.AsyncClient,
) -> None:
    response = await sandbox.get("/oauth", params={"client_id": "nobody", "state": "xyz"})

    assert response.status_code == 400
    assert "client_id" in response.text


async def test_allow_redirects_with_code_state_referer_and_client_id(
    sandbox: httpx.AsyncClient, config: SandboxConfig
) -> None:
    response = await sandbox.post(
        "/oauth/decide",
        data={"client_id": config.client_id, "state": "xyz", "has_state": "1", "decision": "allow"},
    )

    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(config.redirect_uri + "?")
    query = query_of(location)
    assert query["code"][0].startswith("def50200")
    assert query["state"] == ["xyz"]
    assert query["referer"] == ["sandbox.test"]
    assert query["client_id"] == [config.client_id]


async def test_allow_without_state_leaves_state_out(
    sandbox: httpx.AsyncClient, config: SandboxConfig
) -> None:
    response = await sandbox.post(
        "/oauth/decide", data={"client_id": config.client_id, "decision": "allow"}
    )

    assert "state" not in query_of(response.headers["location"])


async def test_deny_redirects_with_access_denied(
    sandbox: httpx.AsyncClient, config: SandboxConfig
) -> None:
    response = await sandbox.post(
        "/oauth/decide",
        data={"client_id": config.client_id, "state": "xyz", "has_state": "1", "decision": "deny"},
    )

    assert response.status_code == 302
    assert query_of(response.headers["location"]) == {
        "error": ["access_denied"],
        "client_id": [config.client_id],
        "state": ["xyz"],
    }


async def test_code_exchange_returns_amocrm_token_response(
    sandbox: httpx.AsyncClient, config: SandboxConfig, clock: ManualClock
) -> None:
    tokens = await exchange(sandbox, config)

    assert set(tokens) == {
        "token_type",
        "expires_in",
        "server_time",
        "access_token",
        "refresh_token",
    }
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 86400
    assert tokens["server_time"] == int(clock())


async def test_access_token_is_jwt_shaped_with_amocrm_claims(
    tokens: JSON, config: SandboxConfig, clock: ManualClock
) -> None:
    token = tokens["access_token"]
    assert token.startswith("eyJ0eXAiOiJKV1QiLCJhbGciOiJSUz")
    assert jwt_part(token, 0) == {"typ": "JWT", "alg": "RS256"}
    payload = jwt_part(token, 1)
    assert payload["aud"] == config.client_id
    assert payload["iat"] == payload["nbf"] == int(clock())
    assert payload["exp"] == int(clock()) + config.access_token_ttl
    assert payload["account_id"] == 31_207_511
    assert payload["base_domain"] == "amocrm.ru"
    assert payload["api_domain"] == "sandbox.test"
    assert isinstance(payload["sub"], str)
    assert "crm" in payload["scopes"]
    assert len(payload["jti"]) >= 16
    assert len(token.split(".")[2]) > 300  # RS256-sized signature


async def test_token_endpoint_accepts_form_bodies(
    sandbox: httpx.AsyncClient, config: SandboxConfig
) -> None:
    code = await new_code(sandbox)

    response = await sandbox.post(
        "/oauth2/access_token",
        data=token_body(config, grant_type="authorization_code", code=code),
    )

    assert response.status_code == 200
    assert response.json()["token_type"] == "Bearer"


async def test_code_works_only_once(sandbox: httpx.AsyncClient, config: SandboxConfig) -> None:
    code = await new_code(sandbox)
    body = token_body(config, grant_type="authorization_code", code=code)
    assert (await sandbox.post("/oauth2/access_token", json=body)).status_code == 200

    again = await sandbox.post("/oauth2/access_token", json=body)

    assert again.status_code == 400
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json() == {
        "hint": "Authorization code has been revoked",
        "title": "Некорректный запрос",
        "type": OAUTH_TYPE,
        "status": 400,
        "detail": INVALID_REQUEST_DETAIL,
    }


async def test_code_expires_after_20_minutes(
    sandbox: httpx.AsyncClient, config: SandboxConfig, clock: ManualClock
) -> None:
    fresh, stale = await new_code(sandbox), await new_code(sandbox)
    clock.advance(19 * 60 + 59)
    ok = await sandbox.post(
        "/oauth2/access_token", json=token_body(config, grant_type="authorization_code", code=fresh)
    )
    clock.advance(1)

    expired = await sandbox.post(
        "/oauth2/access_token", json=token_body(config, grant_type="authorization_code", code=stale)
    )

    assert ok.status_code == 200
    assert expired.status_code == 400
    assert expired.json()["hint"] == "Authorization code has expired"


async def test_unknown_code_is_rejected(sandbox: httpx.AsyncClient, config: SandboxConfig) -> None:
    response = await sandbox.post(
        "/oauth2/access_token",
        json=token_body(config, grant_type="authorization_code", code="def50200nonsense"),
    )

    assert response.status_code == 400
    assert response.json()["hint"] == "Cannot decrypt the authorization code"


async def test_wrong_secret_is_an_invalid_client(
    sandbox: httpx.AsyncClient, config: SandboxConfig
) -> None:
    code = await new_code(sandbox)
    body = token_body(config, grant_type="authorization_code", code=code)
    body["client_secret"] = "wrong"

    response = await sandbox.post("/oauth2/access_token", json=body)

    assert response.status_code == 401
    assert response.json() == {
        "title": "Некорректный клиент",
        "type": OAUTH_TYPE,
        "status": 401,
        "detail": "Авторизация клиента не прошла",
    }


async def test_wrong_client_id_and_wrong_redirect_uri_are_invalid_clients(
    sandbox: httpx.AsyncClient, config: SandboxConfig
) -> None:
    code = await new_code(sandbox)
    bad_id = token_body(config, grant_type="authorization_code", code=code)
    bad_id["client_id"] = "other"
    bad_redirect = token_body(config, grant_type="authorization_code", code=code)
    bad_redirect["redirect_uri"] = "https://attacker.example/cb"

    for body in (bad_id, bad_redirect):
        response = await sandbox.post("/oauth2/access_token", json=body)
        assert response.status_code == 401
        assert response.json()["title"] == "Некорректный клиент"


async def test_missing_grant_type_is_a_bad_request(
    sandbox: httpx.AsyncClient, config: SandboxConfig
) -> None:
    response = await sandbox.post("/oauth2/access_token", json=token_body(config))

    assert response.status_code == 400
    assert response.json()["hint"] == "Check the `grant_type` parameter"


async def test_access_token_opens_the_api_until_it_expires(
    sandbox: httpx.AsyncClient, tokens: JSON, clock: ManualClock, config: SandboxConfig
) -> None:
    headers = bearer(tokens["access_token"])
    assert (await sandbox.get("/api/v4/account", headers=headers)).status_code == 200
    clock.advance(config.access_token_ttl)

    response = await sandbox.get("/api/v4/account", headers=headers)

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == UNAUTHORIZED


async def test_missing_or_unknown_bearer_is_unauthorized(sandbox: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic eA=="}):
        response = await sandbox.get("/api/v4/account", headers=headers)
        assert response.status_code == 401
        assert response.json() == UNAUTHORIZED


async def test_refresh_returns_a_new_pair(
    sandbox: httpx.AsyncClient, tokens: JSON, config: SandboxConfig
) -> None:
    response = await refresh(sandbox, config, tokens["refresh_token"])

    assert response.status_code == 200
    fresh = response.json()
    assert fresh["access_token"] != tokens["access_token"]
    assert fresh["refresh_token"] != tokens["refresh_token"]
    assert (await sandbox.get("/api/v4/account", headers=bearer(fresh["access_token"]))).is_success


async def test_refresh_works_with_a_form_body(
    sandbox: httpx.AsyncClient, tokens: JSON, config: SandboxConfig
) -> None:
    response = await sandbox.post(
        "/oauth2/access_token",
        data=token_body(config, grant_type="refresh_token", refresh_token=tokens["refresh_token"]),
    )

    assert response.status_code == 200


async def test_old_refresh_token_works_until_the_new_access_token_is_used(
    sandbox: httpx.AsyncClient, tokens: JSON, config: SandboxConfig, state: SandboxState
) -> None:
    first = (await refresh(sandbox, config, tokens["refresh_token"])).json()
    # The answer was "lost": the client retries with the old refresh token and gets a pair.
    retry = await refresh(sandbox, config, tokens["refresh_token"])
    assert retry.status_code == 200
    second = retry.json()
    assert state.tokens.stats.refresh_reused_in_grace == 1

    assert (await sandbox.get("/api/v4/account", headers=bearer(second["access_token"]))).is_success
    revoked = await refresh(sandbox, config, tokens["refresh_token"])

    assert revoked.status_code == 401
    assert revoked.headers["content-type"] == "application/problem+json"
    assert revoked.json() == revoked_body()
    # The sibling pair minted from the same refresh token is stale too.
    assert (await refresh(sandbox, config, first["refresh_token"])).json() == revoked_body()
    stale = await sandbox.get("/api/v4/account", headers=bearer(first["access_token"]))
    assert stale.status_code == 401
    assert state.tokens.stats.revoked_refresh_presented == 2
    assert state.tokens.stats.refreshes_rejected == 2


async def test_old_refresh_token_is_revoked_once_the_new_refresh_token_is_used(
    sandbox: httpx.AsyncClient, tokens: JSON, config: SandboxConfig
) -> None:
    first = (await refresh(sandbox, config, tokens["refresh_token"])).json()
    assert (await refresh(sandbox, config, first["refresh_token"])).status_code == 200

    response = await refresh(sandbox, config, tokens["refresh_token"])

    assert response.status_code == 401
    assert response.json()["hint"] == "Token has been revoked"


async def test_old_access_token_keeps_working_until_the_new_pair_is_used(
    sandbox: httpx.AsyncClient, tokens: JSON, config: SandboxConfig
) -> None:
    fresh = (await refresh(sandbox, config, tokens["refresh_token"])).json()
    old_headers = bearer(tokens["access_token"])
    assert (await sandbox.get("/api/v4/account", headers=old_headers)).status_code == 200

    await sandbox.get("/api/v4/account", headers=bearer(fresh["access_token"]))

    assert (await sandbox.get("/api/v4/account", headers=old_headers)).status_code == 401


async def test_refresh_counts_are_in_stats(
    sandbox: httpx.AsyncClient, tokens: JSON, config: SandboxConfig
) -> None:
    fresh = (await refresh(sandbox, config, tokens["refresh_token"])).json()
    await refresh(sandbox, config, fresh["refresh_token"])
    await refresh(sandbox, config, tokens["refresh_token"])  # revoked by now

    oauth = (await sandbox.get("/_sandbox/stats")).json()["oauth"]

    assert oauth["refreshes_ok"] == 2
    assert oauth["refreshes_rejected"] == 1
    assert oauth["revoked_refresh_presented"] == 1
    assert oauth["codes_exchanged"] == 1


async def test_refresh_token_expires_after_its_lifetime(
    sandbox: httpx.AsyncClient, tokens: JSON, config: SandboxConfig, clock: ManualClock
) -> None:
    clock.advance(config.refresh_token_ttl)

    response = await refresh(sandbox, config, tokens["refresh_token"])

    assert response.status_code == 401
    assert response.json()["hint"] == "Token has expired"


async def test_unknown_refresh_token_is_rejected(
    sandbox: httpx.AsyncClient, config: SandboxConfig
) -> None:
    response = await refresh(sandbox, config, "def50200unknown")

    assert response.status_code == 401
    assert response.json()["hint"] == "Cannot decrypt the refresh token"


async def test_expire_tokens_control_makes_access_tokens_expired(
    sandbox: httpx.AsyncClient, auth: dict[str, str], tokens: JSON, config: SandboxConfig
) -> None:
    answer = await sandbox.post("/_sandbox/expire-tokens")

    assert answer.json() == {"expired": 1}
    assert (await sandbox.get("/api/v4/account", headers=auth)).status_code == 401
    assert (await refresh(sandbox, config, tokens["refresh_token"])).status_code == 200


async def test_long_lived_token_is_a_bearer_that_never_refreshes(clock: ManualClock) -> None:
    from amogate.amocrm.sandbox.app import create_sandbox_app
    from amogate.amocrm.sandbox.transport import SandboxTransport

    base = SandboxConfig(public_url="http://sandbox.test", rate_limit=0)
    long_lived = make_long_lived_token(base, clock())
    config = SandboxConfig(
        public_url="http://sandbox.test", rate_limit=0, long_lived_token=long_lived
    )
    app = create_sandbox_app(config, SandboxState(config, clock=clock))
    transport = SandboxTransport(app)
    async with httpx.AsyncClient(transport=transport, base_url=config.public_url) as client:
        clock.advance(400 * 86400)  # far beyond an access token's day
        ok = await client.get("/api/v4/account", headers=bearer(long_lived))
        as_refresh = await refresh(client, config, long_lived)
        await client.post("/_sandbox/expire-tokens", json={"include_long_lived": True})
        after = await client.get("/api/v4/account", headers=bearer(long_lived))

    assert ok.status_code == 200
    assert jwt_part(long_lived, 1)["exp"] > int(clock())
    assert as_refresh.status_code == 401
    assert after.status_code == 401


async def test_consent_can_be_given_with_a_plain_get(
    sandbox: httpx.AsyncClient, config: SandboxConfig
) -> None:
    response = await sandbox.get(
        "/oauth/decide", params={"client_id": config.client_id, "decision": "allow"}
    )

    assert response.status_code == 302
    assert "code" in query_of(response.headers["location"])


async def test_current_subdomain_is_found_by_refresh_token(
    sandbox: httpx.AsyncClient, tokens: JSON, config: SandboxConfig
) -> None:
    found = await sandbox.get(
        "/oauth2/account/current/subdomain", headers={"X-Refresh-Token": tokens["refresh_token"]}
    )
    unknown = await sandbox.get(
        "/oauth2/account/current/subdomain", headers={"X-Refresh-Token": "nope"}
    )

    assert found.json() == {
        "id": 31_207_511,
        "subdomain": "sandbox",
        "domain": "sandbox.test",
        "top_level_domain": "test",
    }
    assert unknown.status_code == 401
