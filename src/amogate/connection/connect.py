"""Connecting an account: OAuth `state` handling and the authorization-code exchange.

Shared by the browser flow (/oauth/authorize → consent → /oauth/callback) and the CLI
(`amogate auth url`, `amogate auth exchange CODE`)."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import structlog

from amogate.amocrm import oauth
from amogate.amocrm.errors import AmoAuthError, AmoError
from amogate.connection import advice
from amogate.connection.service import AmoConnection
from amogate.connection.tokens import utcnow
from amogate.storage import accounts

log = structlog.get_logger("amogate.connect")

STATE_TTL = timedelta(minutes=15)


class ConnectError(Exception):
    """The connection attempt was refused; `message` is safe to show."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Connected:
    base_domain: str
    account_name: str | None
    account_id: int | None


async def new_consent_url(amo: AmoConnection) -> str:
    """A consent-page URL with a fresh single-use `state` stored server-side."""
    settings = amo.settings
    if not settings.amo_client_id:
        raise ConnectError("AMO_CLIENT_ID is not set", status=503)
    state = secrets.token_urlsafe(24)
    try:
        url = oauth.consent_url(
            amo_domain=settings.amo_domain,
            base_url=settings.amo_base_url or None,
            client_id=settings.amo_client_id,
            state=state,
            mode="popup",
        )
    except ValueError:
        raise ConnectError(
            "AMO_DOMAIN must be an amoCRM or Kommo account host (or set AMO_BASE_URL)",
            status=503,
        ) from None
    now = utcnow()
    async with amo.database.transaction() as conn:
        await accounts.add_oauth_state(conn, state, now, now + STATE_TTL)
    return url


async def consume_state(amo: AmoConnection, state: str | None) -> None:
    if not state:
        raise ConnectError(advice.STATE_MISSING)
    async with amo.database.transaction() as conn:
        ok = await accounts.consume_oauth_state(conn, state, utcnow())
    if not ok:
        raise ConnectError(advice.STATE_UNKNOWN)


def account_host(amo: AmoConnection, referer: str | None) -> str:
    """The account host to exchange the code with, validated before any token call."""
    base_url = amo.settings.amo_base_url or None
    if referer:
        if not oauth.is_trusted_referer(referer, base_url):
            log.warning("oauth.callback.untrusted_referer")
            raise ConnectError("Untrusted referer: not an amoCRM or Kommo account host")
        host = urlsplit(referer if "//" in referer else f"//{referer}").netloc
        return host.lower()
    hint = amo.base_domain_hint()
    if not hint:
        raise ConnectError("Missing referer: the account host is unknown (set AMO_DOMAIN)")
    return hint


async def exchange(amo: AmoConnection, code: str, host: str) -> Connected:
    """Exchange an authorization code and store the pair (committed before it is used)."""
    settings = amo.settings
    if not code:
        raise ConnectError("Missing authorization code")
    try:
        pair = await oauth.exchange_code(
            amo.oauth_http,
            token_url=amo.tokens.oauth_client.token_url(host),
            client_id=settings.amo_client_id,
            client_secret=settings.amo_client_secret.get_secret_value(),
            redirect_uri=settings.amo_redirect_uri,
            code=code,
        )
    except AmoAuthError as exc:
        # amoCRM's own words (e.g. "Authorization code has expired"): safe and useful to show.
        message = advice.token_endpoint_error(exc, _hint(exc.body_excerpt))
        log.warning("oauth.exchange.failed", status=exc.status, reason=message)
        raise ConnectError(message, status=502 if exc.status == 401 else 400) from None
    except AmoError as exc:
        log.warning("oauth.exchange.failed", status=exc.status, error=type(exc).__name__)
        raise ConnectError(advice.EXCHANGE_UNAVAILABLE, status=502) from None
    if not settings.amo_base_url:
        pair = oauth.TokenPair(pair.access_token, pair.refresh_token, pair.expires_at, host)
    await amo.tokens.store_pair(pair, reason="code_exchange")
    name: str | None = None
    account_id: int | None = None
    try:
        client = await amo.client()
        account = await client.get_account()
        name = str(account.get("name")) if account.get("name") else None
        raw_id = account.get("id")
        account_id = int(raw_id) if isinstance(raw_id, int) else None
        if account_id is not None:
            async with amo.database.transaction() as conn:
                await accounts.set_account_id(conn, amo.tokens.account_key, account_id)
    except AmoError as exc:
        # Connected all the same; the account's name is only a nicety.
        log.warning("oauth.account_lookup.failed", detail=exc.detail)
    log.info("oauth.connected", base_domain=pair.base_domain, account_id=account_id)
    await amo.connected()
    return Connected(base_domain=pair.base_domain, account_name=name, account_id=account_id)


def _hint(body: str | None) -> str | None:
    """The `hint` of amoCRM's OAuth problem JSON ("Authorization code has expired"): more
    telling than its generic Russian `detail`."""
    try:
        data = json.loads(body or "")
    except ValueError:
        return None
    hint = data.get("hint") if isinstance(data, dict) else None
    return hint[:200] if isinstance(hint, str) and hint else None


def describe(row: accounts.AccountRow | None) -> dict[str, object]:
    """Connection status for /oauth/status, diagnostics and the CLI — never a token."""
    if row is None or not row.has_token:
        return {
            "has_token": False,
            "status": "not_authorized",
            "state": row.state if row else accounts.NOT_AUTHORIZED,
        }
    now = utcnow()
    expires = row.access_expires_at
    return {
        "has_token": True,
        "status": "authorized" if row.state == accounts.CONNECTED else "not_authorized",
        "state": row.state,
        "state_reason": row.state_reason,
        "token_kind": row.token_kind,
        "base_domain": row.base_domain,
        "amo_account_id": row.amo_account_id,
        "access_token_expires_at": expires.isoformat() if expires else None,
        "access_token_valid": bool(expires is None or expires > now),
        "access_token_expires_in": int((expires - now).total_seconds()) if expires else None,
        "has_refresh_token": bool(row.refresh_token),
        "last_refresh_at": row.refreshed_at.isoformat() if row.refreshed_at else None,
    }
