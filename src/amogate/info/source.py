"""`AmoInfoSource`: what `InfoCache` fetches, read from amoCRM through the gateway's connection.

Each fetch uses its own short-lived `AmoClient` (one connection reused across the pages of a
field list) sharing the connection's tokens and the shared outbound budget. It differs from the
connection's client in two ways that suit an HTTP request someone is waiting on: a shorter
timeout, and a limiter that refuses to sit out a long 429 pause (it fails at once, so a stale
copy or a clear 503 with Retry-After goes back instead of a hanging request). Fetches are rare
(once per kind per TTL), so the extra client costs nothing that matters.
"""

from __future__ import annotations

from typing import Any

import httpx

from amogate.amocrm.errors import AmoBlockedError
from amogate.connection.service import AmoConnection, accounts_not_configured
from amogate.info.cache import InfoCache, Kind

READ_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
# Longest 429 pause (seconds) a read waits out before giving up on amoCRM for now.
MAX_PAUSE_WAIT = 1.0


class AmoInfoSource:
    def __init__(
        self,
        amo: AmoConnection,
        *,
        timeout: httpx.Timeout = READ_TIMEOUT,
        max_pause_wait: float = MAX_PAUSE_WAIT,
    ) -> None:
        self.amo = amo
        self.timeout = timeout
        self.max_pause_wait = max_pause_wait

    async def fetch(self, kind: Kind) -> Any:
        try:
            return await self._fetch(kind)
        except AmoBlockedError as exc:
            if exc.blocked_for is not None:
                raise
            # amoCRM's 403 says nothing about when to come back; the shared budget knows how
            # long calls stay paused, which is what a caller's Retry-After should say.
            raise AmoBlockedError(
                exc.detail,
                status=exc.status,
                body_excerpt=exc.body_excerpt,
                blocked_for=await self._blocked_for(),
            ) from None

    async def _blocked_for(self) -> float | None:
        state = await self.amo.limiter.state()
        if state is None:
            return None
        remaining = state.blocked_until - self.amo.limiter.clock()
        return remaining if remaining > 0 else None

    async def _fetch(self, kind: Kind) -> Any:
        base = await self.amo.api_base()
        if not base:
            raise accounts_not_configured()
        async with self.amo.build_client(
            base, max_pause_wait=self.max_pause_wait, timeout=self.timeout
        ) as client:
            if kind == "account":
                return account_view(await client.get_account(with_=("datetime_settings",)))
            if kind == "pipelines":
                return await client.list_pipelines()
            if kind == "lead_fields":
                return await client.list_custom_fields("leads")
            if kind == "contact_fields":
                return await client.list_custom_fields("contacts")
            if kind == "users":
                return [user_view(user) for user in await client.list_users()]
        raise ValueError(f"unknown info kind: {kind!r}")


def account_view(account: dict[str, Any]) -> dict[str, Any]:
    """amoCRM's account with `timezone` (and its offset) lifted to the top level, as the original
    gateway's users expect; everything else, `_embedded.datetime_settings` included, is kept."""
    view = dict(account)
    embedded = view.get("_embedded")
    settings = embedded.get("datetime_settings") if isinstance(embedded, dict) else None
    if isinstance(settings, dict):
        view.setdefault("timezone", settings.get("timezone"))
        if "timezone_offset" in settings:
            view.setdefault("timezone_offset", settings["timezone_offset"])
    else:
        view.setdefault("timezone", None)
    return view


def user_view(user: dict[str, Any]) -> dict[str, Any]:
    """A user as a form needs it to choose `responsible_user_id`: id, name, email (amoCRM's
    rights and roles stay out of the gateway's answers)."""
    return {"id": user.get("id"), "name": user.get("name"), "email": user.get("email")}


def info_cache_for(amo: AmoConnection | None) -> InfoCache | None:
    """The app's cache for its amoCRM connection (None when amoCRM is not configured)."""
    if amo is None:
        return None
    return InfoCache(
        AmoInfoSource(amo),
        ttl=amo.settings.info_cache_ttl,
        refresh_min_interval=amo.settings.info_refresh_min_interval,
    )
