"""amoCRM OAuth2: the consent URL, the token endpoint and which account hosts we trust."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

import httpx

from amogate.amocrm import jwt
from amogate.amocrm.errors import error_from_exception, error_from_response

TOKEN_PATH = "/oauth2/access_token"  # noqa: S105 - a path, not a secret
TRUSTED_SUFFIXES = (".amocrm.ru", ".amocrm.com", ".kommo.com")
_DEFAULT_LIFETIME = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class TokenPair:
    """A token pair and the account host it belongs to. Its repr never shows a token."""

    access_token: str
    refresh_token: str
    expires_at: datetime
    base_domain: str

    def __repr__(self) -> str:
        return (
            f"TokenPair(base_domain={self.base_domain!r}, "
            f"expires_at={self.expires_at.isoformat()!r}, access_token=<hidden>, "
            f"refresh_token=<hidden>)"
        )

    __str__ = __repr__

    def expires_within(self, margin: timedelta, now: datetime | None = None) -> bool:
        return self.expires_at - margin <= (now or datetime.now(UTC))


def token_url(base_domain: str, *, base_url: str | None = None) -> str:
    """``https://{base_domain}/oauth2/access_token``, or under ``base_url`` (the sandbox)."""
    if base_url:
        return base_url.rstrip("/") + TOKEN_PATH
    return f"https://{base_domain}{TOKEN_PATH}"


async def exchange_code(
    http: httpx.AsyncClient,
    *,
    token_url: str,
    client_id: str,
    client_secret: str,
    redirect_uri: str,
    code: str,
) -> TokenPair:
    body = {
        "client_id": client_id,
        "client_secret": client_secret,
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
    }
    return await _token_call(http, token_url, body)


async def refresh_tokens(
    http: httpx.AsyncClient,
    *,
    token_url: str,
    client_id: str,
    client_secret: str,
    redirect_uri: str,
    refresh_token: str,
) -> TokenPair:
    body = {
        "client_id": client_id,
        "client_secret": client_secret,
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "redirect_uri": redirect_uri,
    }
    return await _token_call(http, token_url, body)


async def _token_call(http: httpx.AsyncClient, url: str, body: Mapping[str, str]) -> TokenPair:
    try:
        response = await http.post(url, json=dict(body), headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise error_from_exception(exc) from None
    if response.status_code != 200:
        raise error_from_response(response, oauth=True)
    return _token_pair(response, base_domain=urlsplit(url).netloc)


def _token_pair(response: httpx.Response, *, base_domain: str) -> TokenPair:
    try:
        data: Any = response.json()
    except ValueError:
        data = None
    access = data.get("access_token") if isinstance(data, dict) else None
    refresh = data.get("refresh_token") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(access, str) or not isinstance(refresh, str):
        raise error_from_response(response, oauth=True)
    return TokenPair(access, refresh, _expiry(data, access), base_domain)


def _expiry(data: Mapping[str, Any], access_token: str) -> datetime:
    """When the access token expires, on the local clock that will be compared against it.

    ``server_time + expires_in`` would be on amoCRM's clock; with a skewed (or a sandbox's
    hand-moved) clock it could make a fresh token look expired, so ``expires_in`` counts from now.
    """
    now = datetime.now(UTC)
    expires_in = data.get("expires_in")
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        return now + timedelta(seconds=expires_in)
    return jwt.expires_at(access_token) or now + _DEFAULT_LIFETIME


def consent_url(
    *,
    amo_domain: str,
    base_url: str | None = None,
    client_id: str,
    state: str,
    mode: Literal["post_message", "popup"] = "post_message",
) -> str:
    """The consent page: www.amocrm.ru for amocrm.ru accounts, www.kommo.com for Kommo ones."""
    query = urlencode({"client_id": client_id, "state": state, "mode": mode})
    if base_url:
        return f"{base_url.rstrip('/')}/oauth?{query}"
    host = _host_of(amo_domain)
    if host.endswith(".amocrm.ru"):
        return f"https://www.amocrm.ru/oauth?{query}"
    if host.endswith((".kommo.com", ".amocrm.com")):
        return f"https://www.kommo.com/oauth?{query}"
    raise ValueError(f"not an amoCRM or Kommo account host: {amo_domain!r}")


def _host_of(domain: str) -> str:
    domain = domain.strip().lower()
    if "//" in domain:
        domain = urlsplit(domain).netloc
    return domain.split("/", 1)[0].rstrip(".")


_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_HOST_PORT = re.compile(rf"({_LABEL}(?:\.{_LABEL})*)(?::([0-9]{{1,5}}))?")


def account_host_allowed(candidate: str, *, known_domain: str | None, base_url: str | None) -> bool:
    """Whether ``candidate`` (an account host: the callback's ``referer``, a tokens.json's
    ``base_domain``) may receive our client secret and codes. The one rule for both:

    - the ``base_url`` host (AMO_BASE_URL: the sandbox, a proxy), port included, where set;
    - when the account's domain is known (AMO_DOMAIN, or the account connected before), that
      host: a code from any other account is refused, even on amoCRM's own domains;
    - otherwise (and only without ``base_url``) any host on amoCRM's or Kommo's domains.
    """
    host = candidate.strip().lower()
    if base_url and _HOST_PORT.fullmatch(host):
        parts = urlsplit(base_url)
        if parts.hostname:
            expected = parts.hostname.lower()
            if parts.port is not None:
                expected = f"{expected}:{parts.port}"
            if host == expected:
                return True
    if not _HOST.fullmatch(host):
        return False
    if known_domain:
        return host == _host_of(known_domain)
    return not base_url and host.endswith(TRUSTED_SUFFIXES)
