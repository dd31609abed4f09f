from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from amogate.amocrm.errors import (
    AmoAuthError,
    AmoBlockedError,
    AmoRefreshRevokedError,
    AmoTimeoutError,
    AmoTransientError,
    AmoUnavailableError,
)
from amogate.amocrm.oauth import (
    TokenPair,
    account_host_allowed,
    consent_url,
    exchange_code,
    refresh_tokens,
    token_url,
)
from tests.amocrm.helpers import Recorder, fake_jwt, html

TOKEN_URL = "https://mycompany.amocrm.ru/oauth2/access_token"
CREDENTIALS = {
    "token_url": TOKEN_URL,
    "client_id": "1f2e3d4c-0000-4000-8000-aaaaaaaaaaaa",
    "client_secret": "secret-xyz",
    "redirect_uri": "https://gateway.example.com/oauth/callback",
}


def token_response(**overrides: object) -> httpx.Response:
    body: dict[str, object] = {
        "token_type": "Bearer",
        "expires_in": 86400,
        "access_token": "access-new",
        "refresh_token": "def50200refresh-new",
    }
    body.update(overrides)
    return httpx.Response(200, json=body)


def http_for(recorder: Recorder) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(recorder))


async def test_exchange_code_posts_the_authorization_code_grant_as_json() -> None:
    recorder = Recorder(token_response())
    async with http_for(recorder) as http:
        pair = await exchange_code(http, code="def50200code", **CREDENTIALS)

    sent = json.loads(recorder.requests[0].content)
    assert recorder.requests[0].url == TOKEN_URL
    assert sent == {
        "client_id": CREDENTIALS["client_id"],
        "client_secret": "secret-xyz",
        "grant_type": "authorization_code",
        "code": "def50200code",
        "redirect_uri": CREDENTIALS["redirect_uri"],
    }
    assert pair.access_token == "access-new"
    assert pair.refresh_token == "def50200refresh-new"
    assert pair.base_domain == "mycompany.amocrm.ru"


async def test_refresh_sends_the_refresh_grant_with_the_redirect_uri() -> None:
    recorder = Recorder(token_response())
    async with http_for(recorder) as http:
        await refresh_tokens(http, refresh_token="def50200old", **CREDENTIALS)

    sent = json.loads(recorder.requests[0].content)
    assert sent["grant_type"] == "refresh_token"
    assert sent["refresh_token"] == "def50200old"
    assert sent["redirect_uri"] == CREDENTIALS["redirect_uri"]


async def test_expiry_counts_expires_in_from_now() -> None:
    before = datetime.now(UTC)
    async with http_for(Recorder(token_response(expires_in=3600))) as http:
        pair = await exchange_code(http, code="c", **CREDENTIALS)

    assert before + timedelta(seconds=3600) <= pair.expires_at
    assert pair.expires_at <= datetime.now(UTC) + timedelta(seconds=3600)


async def test_a_skewed_server_time_does_not_make_a_fresh_token_look_expired() -> None:
    server_time = int((datetime.now(UTC) - timedelta(days=30)).timestamp())
    async with http_for(Recorder(token_response(server_time=server_time))) as http:
        pair = await exchange_code(http, code="c", **CREDENTIALS)

    assert not pair.expires_within(timedelta(hours=23))


async def test_expiry_falls_back_to_the_jwt_exp() -> None:
    access = fake_jwt({"exp": 1900000000})
    response = httpx.Response(200, json={"access_token": access, "refresh_token": "r"})
    async with http_for(Recorder(response)) as http:
        pair = await exchange_code(http, code="c", **CREDENTIALS)

    assert pair.expires_at == datetime.fromtimestamp(1900000000, tz=UTC)


async def test_base_domain_keeps_the_port_of_a_sandbox() -> None:
    credentials = {**CREDENTIALS, "token_url": "http://127.0.0.1:9096/oauth2/access_token"}
    async with http_for(Recorder(token_response())) as http:
        pair = await exchange_code(http, code="c", **credentials)

    assert pair.base_domain == "127.0.0.1:9096"


async def test_a_reused_refresh_token_is_reported_as_revoked() -> None:
    revoked = httpx.Response(
        401,
        json={"hint": "Token has been revoked", "title": "Некорректный запрос", "status": 401},
    )
    async with http_for(Recorder(revoked)) as http:
        with pytest.raises(AmoRefreshRevokedError):
            await refresh_tokens(http, refresh_token="def50200used", **CREDENTIALS)


async def test_a_bad_client_is_an_auth_error_but_not_a_revoked_refresh() -> None:
    bad_client = httpx.Response(
        401, json={"title": "Некорректный клиент", "status": 401, "detail": "Авторизация"}
    )
    async with http_for(Recorder(bad_client)) as http:
        with pytest.raises(AmoAuthError) as caught:
            await exchange_code(http, code="c", **CREDENTIALS)

    assert not isinstance(caught.value, AmoRefreshRevokedError)


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (html(503, "503 Service Unavailable"), AmoUnavailableError),
        (httpx.Response(500, json={"detail": "x"}), AmoTransientError),
        (httpx.ReadTimeout("slow"), AmoTimeoutError),
        (httpx.ConnectError("refused"), AmoUnavailableError),
        (html(403, "403 Forbidden"), AmoBlockedError),
        (httpx.Response(200, text="<html>proxy</html>"), AmoUnavailableError),
    ],
)
async def test_token_endpoint_failures_are_mapped(
    answer: httpx.Response | Exception, kind: type[Exception]
) -> None:
    async with http_for(Recorder(answer)) as http:
        with pytest.raises(kind):
            await refresh_tokens(http, refresh_token="r", **CREDENTIALS)


def test_token_pair_repr_never_shows_tokens() -> None:
    pair = TokenPair(
        "eyJaccess-secret",
        "def50200refresh-secret",
        datetime(2030, 1, 1, tzinfo=UTC),
        "x.kommo.com",
    )

    for text in (repr(pair), str(pair), f"{pair}", repr([pair])):
        assert "access-secret" not in text
        assert "refresh-secret" not in text
        assert "x.kommo.com" in text


def test_token_pair_knows_when_it_is_about_to_expire() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    pair = TokenPair("a", "r", now + timedelta(minutes=10), "x.kommo.com")

    assert pair.expires_within(timedelta(minutes=15), now=now)
    assert not pair.expires_within(timedelta(minutes=5), now=now)


def test_token_url_uses_the_account_host_or_the_override() -> None:
    assert token_url("a.kommo.com") == "https://a.kommo.com/oauth2/access_token"
    assert token_url("a.kommo.com", base_url="http://localhost:9096/") == (
        "http://localhost:9096/oauth2/access_token"
    )


def test_consent_url_for_amocrm_ru_accounts() -> None:
    url = consent_url(amo_domain="mycompany.amocrm.ru", client_id="cid", state="s 1")

    assert url == "https://www.amocrm.ru/oauth?client_id=cid&state=s+1&mode=post_message"


@pytest.mark.parametrize(
    "domain", ["mycompany.kommo.com", "old.amocrm.com", "https://A.KOMMO.COM/"]
)
def test_consent_url_for_kommo_accounts(domain: str) -> None:
    url = consent_url(amo_domain=domain, client_id="cid", state="st", mode="popup")

    assert url == "https://www.kommo.com/oauth?client_id=cid&state=st&mode=popup"


def test_consent_url_under_a_base_url_override() -> None:
    url = consent_url(
        amo_domain="mycompany.amocrm.ru",
        base_url="http://127.0.0.1:9096/",
        client_id="cid",
        state="st",
    )

    assert url == "http://127.0.0.1:9096/oauth?client_id=cid&state=st&mode=post_message"


def test_consent_url_refuses_an_unknown_domain() -> None:
    with pytest.raises(ValueError, match="not an amoCRM"):
        consent_url(amo_domain="crm.example.com", client_id="cid", state="st")


def _trusted(host: str, base_url: str | None = None, known: str | None = None) -> bool:
    return account_host_allowed(host, known_domain=known, base_url=base_url)


@pytest.mark.parametrize(
    "referer", ["mycompany.amocrm.ru", "MyCompany.Kommo.com", "old.amocrm.com", "a-b.c.amocrm.ru"]
)
def test_account_hosts_are_trusted_while_no_account_is_known(referer: str) -> None:
    assert _trusted(referer)


@pytest.mark.parametrize(
    "referer",
    [
        "evil.com/.amocrm.ru",
        "amocrm.ru.evil.com",
        "evil.com@x.amocrm.ru",
        "x.amocrm.ru@evil.com",
        "https://x.amocrm.ru",
        "//x.amocrm.ru",
        "x.amocrm.ru.",
        ".amocrm.ru",
        "amocrm.ru",
        "evilamocrm.ru",
        "x.amocrm.ru:443",
        "x.amocrm.ru\\@evil.com",
        "x.amocrm.ru?.kommo.com",
        "x.amocrm.ru#.kommo.com",
        "evil.com\n.amocrm.ru",
        "x.аmocrm.ru",  # Cyrillic "а"
        "",
    ],
)
def test_tricks_are_not_trusted(referer: str) -> None:
    assert not _trusted(referer)
    assert not _trusted(referer, known="x.amocrm.ru")


def test_once_the_account_is_known_only_its_host_is_trusted() -> None:
    assert _trusted("mycompany.amocrm.ru", known="mycompany.amocrm.ru")
    assert _trusted("MyCompany.amocrm.ru", known="mycompany.amocrm.ru")
    assert not _trusted("attacker.amocrm.ru", known="mycompany.amocrm.ru")
    assert not _trusted("mycompany.kommo.com", known="mycompany.amocrm.ru")


def test_the_base_url_host_and_port_is_trusted() -> None:
    assert _trusted("127.0.0.1:9096", "http://127.0.0.1:9096")
    assert _trusted("sandbox.local", "http://Sandbox.local/")
    assert not _trusted("127.0.0.1:9097", "http://127.0.0.1:9096")
    assert not _trusted("127.0.0.1", "http://127.0.0.1:9096")
    assert not _trusted("evil.com@127.0.0.1:9096", "http://127.0.0.1:9096")
    assert not _trusted("127.0.0.1:9096", None)


def test_with_a_base_url_amocrms_own_hosts_are_not_trusted_unless_named() -> None:
    sandbox = "http://127.0.0.1:9096"
    assert not _trusted("attacker.amocrm.ru", sandbox)
    assert _trusted("mycompany.amocrm.ru", sandbox, known="mycompany.amocrm.ru")
    assert not _trusted("attacker.amocrm.ru", sandbox, known="mycompany.amocrm.ru")
