"""What the overview shows: the account, the connection, the outbound budget and the queue.

Everything here is read from the database except the account's name, which comes from the info
cache (one amoCRM call per INFO_CACHE_TTL at most, and never longer than ACCOUNT_WAIT_S)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog
from fastapi import FastAPI

from amogate.app_state import state_of
from amogate.connection import connect
from amogate.connection.service import AmoConnection
from amogate.runtime import Account
from amogate.storage import accounts, delivery_views
from amogate.storage.budget import BudgetState
from amogate.storage.db import Database
from amogate.worker import reachability

log = structlog.get_logger("amogate.admin")

ACCOUNT_WAIT_S = 5.0
# How long a page waits for the account's time zone when it was never fetched (else UTC).
ZONE_WAIT_S = 1.5
PLATFORMS = (
    (".amocrm.ru", "amoCRM (amocrm.ru)"),
    (".amocrm.com", "amoCRM (amocrm.com)"),
    (".kommo.com", "Kommo (kommo.com)"),
)


@dataclass
class Overview:
    configured: bool
    status: dict[str, Any] = field(default_factory=dict)
    connection: str = "not_configured"  # connected | long_lived | needs_reauthorization | ...
    account: dict[str, Any] | None = None
    account_unavailable: bool = False
    host: str | None = None
    platform: str | None = None
    budget: BudgetState | None = None
    rate_limit: float = 0.0
    paused_until: datetime | None = None
    blocked_until: datetime | None = None
    access_expires_at: datetime | None = None
    refreshed_at: datetime | None = None
    counts_24h: dict[str, int] = field(default_factory=dict)
    oldest_undelivered: datetime | None = None
    reach: reachability.Reachability = field(
        default_factory=lambda: reachability.Reachability(known=False, answering=True)
    )

    @property
    def has_token(self) -> bool:
        return bool(self.status.get("has_token"))


def platform_of(host: str | None) -> str | None:
    if not host:
        return None
    bare = host.split(":", 1)[0].lower()
    # Anything else (a sandbox, a proxy) is named by its host.
    return next((name for suffix, name in PLATFORMS if bare.endswith(suffix)), host)


def account_host(amo: AmoConnection, row: accounts.AccountRow | None) -> str | None:
    """The account's host: learned at connect time, else AMO_DOMAIN / AMO_BASE_URL's host."""
    if row is not None and row.base_domain:
        return row.base_domain
    return amo.base_domain_hint()


def lead_url(amo: AmoConnection | None, host: str | None, lead_id: int | None) -> str | None:
    """Where the lead opens in amoCRM's web interface."""
    if amo is None or lead_id is None or not host:
        return None
    if amo.settings.amo_base_url:  # a sandbox or a proxy: keep its scheme
        parts = urlsplit(amo.settings.amo_base_url)
        return f"{parts.scheme}://{parts.netloc}/leads/detail/{lead_id}"
    return f"https://{host}/leads/detail/{lead_id}"


def _default(app: FastAPI) -> Account | None:
    gateway = state_of(app).gateway
    return gateway.default if gateway is not None else None


async def _account_info(app: FastAPI) -> dict[str, Any] | None:
    running = _default(app)
    if running is None:
        return None
    account = await asyncio.wait_for(running.info.account(), ACCOUNT_WAIT_S)
    return account if isinstance(account, dict) else None


async def account_zone(app: FastAPI) -> tzinfo:
    """The account's time zone (amoCRM's account settings), from the info cache; UTC when it
    is unknown. A copy of any age will do: accounts rarely move."""
    account = _default(app)
    info = account.info if account is not None else None
    if info is None:
        return UTC
    entry = info.peek("account")
    value = entry.value if entry is not None else None
    if value is None:
        try:
            value = await asyncio.wait_for(info.account(), ZONE_WAIT_S)
        except Exception:  # not connected, amoCRM down or slow: show UTC for now
            return UTC
    name = value.get("timezone") if isinstance(value, dict) else None
    try:
        return ZoneInfo(name) if isinstance(name, str) and name else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _when(unix: float, now: float) -> datetime | None:
    return datetime.fromtimestamp(unix, UTC) if unix > now else None


async def gather(app: FastAPI, *, now: datetime | None = None) -> Overview:
    now = now or datetime.now(UTC)
    database: Database = state_of(app).running().database
    async with database.read() as conn:
        counts = await delivery_views.counts(conn, since=now - timedelta(hours=24))
        oldest = await delivery_views.oldest_undelivered(conn)
        reach = reachability.assess(await delivery_views.latest_attempts(conn))
    default = _default(app)
    amo: AmoConnection | None = default.amo if default is not None else None
    view = Overview(
        configured=amo is not None, counts_24h=counts, oldest_undelivered=oldest, reach=reach
    )
    if amo is None:
        return view
    row = await amo.account_state()
    view.status = connect.describe(row)
    view.host = account_host(amo, row)
    view.platform = platform_of(view.host)
    view.rate_limit = amo.settings.amo_rate_limit
    view.budget = await amo.limiter.state()
    unix_now = time.time()
    if view.budget is not None:
        view.paused_until = _when(view.budget.paused_until, unix_now)
        view.blocked_until = _when(view.budget.blocked_until, unix_now)
    if row is not None and row.has_token:
        view.access_expires_at = row.access_expires_at
        view.refreshed_at = row.refreshed_at
    view.connection = _connection(row)
    if view.has_token and view.connection != accounts.NEEDS_REAUTHORIZATION:
        try:
            view.account = await _account_info(app)
        except Exception as exc:  # amoCRM down, blocked, slow: the page still shows the rest
            log.info("admin.account_unavailable", error=type(exc).__name__)
            view.account_unavailable = True
    return view


def _connection(row: accounts.AccountRow | None) -> str:
    if row is None or not row.has_token:
        return accounts.NOT_AUTHORIZED
    if row.state == accounts.NEEDS_REAUTHORIZATION:
        return accounts.NEEDS_REAUTHORIZATION
    if row.token_kind == accounts.LONG_LIVED:
        return "long_lived"
    return "connected" if row.state == accounts.CONNECTED else accounts.NOT_AUTHORIZED
