"""Connecting an account: OAuth `state` handling and the authorization-code exchange.

Shared by the browser flow (/oauth/authorize → consent → /oauth/callback) and the CLI
(`amogate auth url`, `amogate auth exchange CODE`). Whoever connects the gateway receives every
lead from then on, so each step refuses what an outsider could forge:

- a state is made only for an admin (the routes and the CLI check that), single-use, expiring;
  one handed to a browser is bound to a cookie that browser got with it, so a state that leaks
  (a shared consent link, a log) is useless elsewhere; states made by `amogate auth url` (shell
  access) need no cookie;
- the account host a code is exchanged at passes `oauth.account_host_allowed` (our client
  secret goes there): AMO_DOMAIN, the account connected before, or the AMO_BASE_URL host;
- the new pair is stored only after `GET /api/v4/account` with it says which account it is:
  another account than the one connected before is refused (409) unless the admin confirmed
  the replacement. Every refusal leaves the stored tokens as they were.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog

from amogate.amocrm import oauth
from amogate.amocrm.auth import BearerAuth, StaticTokenProvider
from amogate.amocrm.errors import AmoAuthError, AmoError
from amogate.connection import advice
from amogate.connection.service import AmoConnection
from amogate.connection.tokens import utcnow
from amogate.storage import accounts
from amogate.storage.db import Database

log = structlog.get_logger("amogate.connect")

STATE_TTL = timedelta(minutes=15)


class ConnectError(Exception):
    """The connection attempt was refused; `message` is safe to show."""

    def __init__(
        self, message: str, *, status: int = 400, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.details = details or {}


@dataclass(frozen=True)
class Connected:
    base_domain: str
    account_name: str | None
    account_id: int | None


@dataclass(frozen=True)
class Consent:
    """Where to send the admin, and the cookie to give their browser with it (None for a
    state made by the CLI)."""

    url: str
    browser_cookie: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Grant:
    """What a valid state allows the callback to do."""

    replace_account: bool


def _digest(cookie: str) -> str:
    return hashlib.sha256(cookie.encode("utf-8")).hexdigest()


def check_credentials(amo: AmoConnection) -> None:
    """Refuse (4xx, naming the variable) when the integration's credentials are missing."""
    settings = amo.settings
    missing = [
        name
        for name, value in (
            ("AMO_CLIENT_ID", settings.amo_client_id),
            ("AMO_CLIENT_SECRET", settings.amo_client_secret.get_secret_value()),
        )
        if not value
    ]
    if missing:
        raise ConnectError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: "
            "copy them from the integration's settings in amoCRM",
            status=400,
        )


async def start_consent(
    amo: AmoConnection, *, browser: bool, replace_account: bool = False
) -> Consent:
    """A consent-page URL with a fresh single-use `state` stored server-side; for a browser,
    also the cookie the state is bound to. Only call this for an admin."""
    check_credentials(amo)
    settings = amo.settings
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
            status=400,
        ) from None
    cookie = secrets.token_urlsafe(32) if browser else None
    now = utcnow()
    async with amo.database.transaction() as conn:
        await accounts.add_oauth_state(
            conn,
            state,
            now,
            now + STATE_TTL,
            browser_digest=_digest(cookie) if cookie else None,
            replace_account=replace_account,
            account_key=amo.account_key,
        )
    return Consent(url=url, browser_cookie=cookie)


async def new_consent_url(amo: AmoConnection, *, replace_account: bool = False) -> str:
    """A consent URL whose state needs no browser cookie (`amogate auth url`, the demo)."""
    return (await start_consent(amo, browser=False, replace_account=replace_account)).url


async def state_account(database: Database, state: str | None) -> str:
    """The account a state was handed out for (`default` when there is no such state: the
    callback then refuses it as unknown)."""
    if not state:
        return accounts.DEFAULT_ACCOUNT
    async with database.read() as conn:
        stored = await accounts.get_oauth_state(conn, state)
    return stored.account_key if stored is not None else accounts.DEFAULT_ACCOUNT


async def consume_state(
    amo: AmoConnection, state: str | None, browser_cookie: str | None = None
) -> Grant:
    """Accept `state` once: it must exist, be fresh and, when it was handed to a browser,
    come with that browser's cookie. Nothing is written for a state that fails the checks."""
    if not state:
        raise ConnectError(advice.STATE_MISSING)
    now = utcnow()
    async with amo.database.read() as conn:
        stored = await accounts.get_oauth_state(conn, state)
    if stored is None or stored.expires_at <= now or stored.account_key != amo.account_key:
        raise ConnectError(advice.STATE_UNKNOWN)
    if stored.browser_digest is not None and not (
        browser_cookie and hmac.compare_digest(_digest(browser_cookie), stored.browser_digest)
    ):
        log.warning("oauth.callback.state_cookie_missing")
        raise ConnectError(
            "This connection was started in another browser (its cookie is missing): "
            "start again from the admin page in this browser",
            status=403,
        )
    async with amo.database.transaction() as conn:
        ok = await accounts.consume_oauth_state(conn, state, now)
    if not ok:
        raise ConnectError(advice.STATE_UNKNOWN)
    return Grant(replace_account=stored.replace_account)


async def known_domain(amo: AmoConnection, *, replace_account: bool = False) -> str | None:
    """The account host a code must come from: AMO_DOMAIN, else the host of the account
    connected before (unless the admin is replacing that account), else unknown."""
    if amo.settings.amo_domain:
        return amo.settings.amo_domain
    if replace_account:
        return None
    row = await amo.account_state()
    return row.base_domain if row is not None and row.base_domain else None


async def account_host(
    amo: AmoConnection, referer: str | None, *, replace_account: bool = False
) -> str:
    """The account host to exchange the code with, validated before any token call."""
    base_url = amo.settings.amo_base_url or None
    expected = await known_domain(amo, replace_account=replace_account)
    if referer:
        if not oauth.account_host_allowed(referer, known_domain=expected, base_url=base_url):
            log.warning("oauth.callback.untrusted_referer", referer=referer[:120])
            raise ConnectError(
                "Untrusted referer: not the amoCRM account this gateway is set up for"
            )
        return referer.strip().lower()
    hint = amo.base_domain_hint() or expected
    if not hint:
        raise ConnectError("Missing referer: the account host is unknown (set AMO_DOMAIN)")
    return hint


async def exchange(
    amo: AmoConnection, code: str, host: str, *, replace_account: bool = False
) -> Connected:
    """Exchange an authorization code, find out which account the pair belongs to, and store
    it (committed before it is used) — unless it is another account than the one connected
    before and `replace_account` is False: then nothing is stored (409)."""
    settings = amo.settings
    if not code:
        raise ConnectError("Missing authorization code")
    check_credentials(amo)
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
    name, account_id = await _account_of(amo, pair)

    def same_account(row: accounts.AccountRow) -> None:
        """Runs under the account row's lock, right before the pair would be stored."""
        previous = row.amo_account_id
        if replace_account or previous is None or account_id == previous:
            return
        if account_id is None:
            raise ConnectError(
                "amoCRM did not say which account the code belongs to; nothing was changed. "
                "Try again in a minute",
                status=502,
            )
        log.warning("oauth.callback.other_account", connected=previous, offered=account_id)
        raise ConnectError(
            f"This is another amoCRM account (id {account_id}) than the one connected "
            f"(id {previous}); nothing was changed. To replace the connected account, use "
            "'Connect another account' on the admin page or "
            "`amogate auth exchange CODE --replace`",
            status=409,
            details={"connected_account_id": previous, "offered_account_id": account_id},
        )

    await amo.tokens.store_pair(
        pair, reason="code_exchange", account_id=account_id, guard=same_account
    )
    log.info(
        "oauth.connected",
        base_domain=pair.base_domain,
        account_id=account_id,
        replaced=replace_account,
    )
    await amo.connected()
    return Connected(base_domain=pair.base_domain, account_name=name, account_id=account_id)


async def _account_of(amo: AmoConnection, pair: oauth.TokenPair) -> tuple[str | None, int | None]:
    """`GET /api/v4/account` with the new (not yet stored) pair: the account's name and id,
    (None, None) when amoCRM does not answer."""
    base = amo.settings.amo_base_url or f"https://{pair.base_domain}"
    client = amo.build_client(base, auth=BearerAuth(StaticTokenProvider(pair.access_token)))
    try:
        account = await client.get_account()
    except AmoError as exc:
        log.warning("oauth.account_lookup.failed", detail=exc.detail)
        return None, None
    finally:
        await client.aclose()
    name = str(account.get("name")) if account.get("name") else None
    raw_id = account.get("id")
    return name, raw_id if isinstance(raw_id, int) and not isinstance(raw_id, bool) else None


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
