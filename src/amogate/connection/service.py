"""`AmoConnection`: everything the gateway needs to talk to one amoCRM account.

One `httpx.AsyncClient` for the token endpoint, the account's token manager and its shared
budget, and `build_client`, the one place an `AmoClient` for the account is made (the
worker, the info cache, the checks and the connect flow each ask it for one with their own
timeout and longest 429 wait). `settings` is the account's view of the settings
(`amogate.accounts.config.settings_for`). `transport` lets tests route everything through the
in-process sandbox; in production it is None (real network).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import structlog

from amogate.amocrm.auth import BearerAuth
from amogate.amocrm.client import DEFAULT_TIMEOUT, AmoClient, OnCall
from amogate.connection.keeper import run_keeper
from amogate.connection.limiter import DatabaseLimiter
from amogate.connection.tokens import OAuthClient, TokenManager
from amogate.settings import Settings
from amogate.storage import accounts
from amogate.storage import deliveries as delivery_store
from amogate.storage.db import Database

log = structlog.get_logger("amogate.connection")

OAUTH_TIMEOUT = httpx.Timeout(15.0, connect=5.0)


@dataclass
class AmoConnection:
    settings: Settings
    database: Database
    tokens: TokenManager
    limiter: DatabaseLimiter
    oauth_http: httpx.AsyncClient
    transport: httpx.AsyncBaseTransport | None = None
    on_call: OnCall | None = None  # metrics hook: (endpoint template, status or None, seconds)
    account_key: str = accounts.DEFAULT_ACCOUNT
    # Called after a successful (re)connection, e.g. to wake this process's delivery worker.
    on_connected: list[Callable[[], None]] = field(default_factory=list)
    _client: AmoClient | None = None
    _client_base: str = ""
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        settings: Settings,
        database: Database,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        on_call: OnCall | None = None,
        account_key: str = accounts.DEFAULT_ACCOUNT,
    ) -> AmoConnection:
        """The connection of `account_key`, whose view of the settings is `settings`."""
        oauth_http = httpx.AsyncClient(transport=transport, timeout=OAUTH_TIMEOUT)
        oauth_client = OAuthClient(
            client_id=settings.amo_client_id,
            client_secret=settings.amo_client_secret.get_secret_value(),
            redirect_uri=settings.amo_redirect_uri,
            base_url=settings.amo_base_url or None,
            amo_domain=settings.amo_domain,
        )
        tokens = TokenManager(database, oauth_client, oauth_http, account_key=account_key)
        limiter = DatabaseLimiter(database, settings.amo_rate_limit, account_key=account_key)
        return cls(settings, database, tokens, limiter, oauth_http, transport, on_call, account_key)

    async def start(self, *, keeper: bool = True) -> None:
        """Install a long-lived token or import tokens.json, then start the keeper."""
        settings = self.settings
        if (
            settings.amo_long_lived_token is not None
            and settings.amo_long_lived_token.get_secret_value()
        ):
            await self.tokens.use_long_lived(
                settings.amo_long_lived_token.get_secret_value(), self.base_domain_hint()
            )
        elif self.account_key == accounts.DEFAULT_ACCOUNT:
            # The original gateway's tokens.json belongs to the .env account.
            await self.tokens.import_token_file(settings.token_storage_path)
        if keeper:
            self._tasks.append(
                asyncio.create_task(
                    run_keeper(self.tokens, max_age=timedelta(days=settings.token_refresh_days)),
                    name="amogate-token-keeper",
                )
            )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        await self.oauth_http.aclose()

    def base_domain_hint(self) -> str | None:
        if self.settings.amo_base_url:
            return urlsplit(self.settings.amo_base_url).netloc
        return self.settings.amo_domain or None

    async def api_base(self) -> str:
        """AMO_BASE_URL, else the account host learned at connect time, else AMO_DOMAIN."""
        if self.settings.amo_base_url:
            return self.settings.amo_base_url
        row = self.tokens._cached or await self.tokens.status()
        domain = (row.base_domain if row else None) or self.settings.amo_domain
        return f"https://{domain}" if domain else ""

    async def client(self) -> AmoClient:
        """The API client (rebuilt if the account's host changed after a reconnect)."""
        base = await self.api_base()
        if not base:
            raise accounts_not_configured()
        if self._client is None or base != self._client_base:
            if self._client is not None:
                await self._client.aclose()
            self._client = self.build_client(base)
            self._client_base = base
        return self._client

    def build_client(
        self,
        base: str,
        *,
        max_pause_wait: float | None = None,
        timeout: httpx.Timeout | None = None,
        auth: httpx.Auth | None = None,
    ) -> AmoClient:
        """A new API client of this account: its tokens, its budget (refusing to sit out a 429
        pause longer than `max_pause_wait`), its metrics hook; `auth` replaces its tokens (a
        pair not stored yet). The caller closes it."""
        limiter = (
            self.limiter if max_pause_wait is None else self.limiter.with_max_wait(max_pause_wait)
        )
        return AmoClient(
            base,
            auth=auth or BearerAuth(self.tokens),
            limiter=limiter,
            transport=self.transport,
            timeout=timeout or DEFAULT_TIMEOUT,
            on_call=self.on_call,
        )

    async def account_state(self) -> accounts.AccountRow | None:
        return await self.tokens.status()

    async def connected(self) -> int:
        """amoCRM was just (re)connected: leads waiting for it go out now, not at their next
        scheduled retry. Workers in other processes see them due at their next poll; this
        process's worker is woken. How many leads were waiting."""
        async with self.database.transaction() as conn:
            waiting = await delivery_store.make_waiting_due(
                conn, now=datetime.now(UTC), account_key=self.account_key
            )
        for listener in self.on_connected:
            listener()
        log.info("oauth.queue.woken", waiting=waiting, account=self.account_key)
        return waiting


def accounts_not_configured() -> Exception:
    from amogate.connection.tokens import NotConnected

    return NotConnected("amoCRM is not configured: set AMO_DOMAIN (or AMO_BASE_URL)")
