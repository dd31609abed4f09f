"""amogate's inbound URL registered with amoCRM, and kept registered.

`connect` registers `PUBLIC_URL/webhooks/amocrm/<account>/<secret>` with amoCRM
(`POST /api/v4/webhooks`) for the union of the amoCRM events the account's subscribers want.
amoCRM disables a webhook whose receiver failed too often (amocrm-api.md §4.11) and re-enables
it when it is saved again; `WebhookCheck` reads amoCRM's webhook list every
WEBHOOK_CHECK_INTERVAL_SECONDS and, when ours is disabled or gone, offers
`gateway.webhook_disabled` to subscribers and saves it again. Its findings are kept per account
(storage/relay.py) for /health/ready, /metrics and the admin page.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from amogate.amocrm.errors import AmoError
from amogate.connection.service import AmoConnection
from amogate.relay import events
from amogate.settings import Settings
from amogate.storage import relay as store
from amogate.storage.db import Database

log = structlog.get_logger("amogate.relay")

ConnectionFor = Callable[[str], AmoConnection | None]


class RegistrationError(Exception):
    """What stops a registration, in words for the operator."""


@dataclass(frozen=True)
class Registered:
    account_key: str
    events: list[str]
    webhook_id: int | None
    public_prefix: str  # the URL without its secret, safe to print


def inbound_path(account: store.RelayAccount) -> str:
    return f"/webhooks/amocrm/{account.account_key}/{account.inbound_secret}"


async def connect(
    amo: AmoConnection, database: Database, settings: Settings, account_key: str
) -> Registered:
    if not settings.public_url:
        raise RegistrationError(
            "PUBLIC_URL is not set: set it to the address amoCRM can reach this gateway at, "
            "e.g. PUBLIC_URL=https://gateway.example.uz"
        )
    now = datetime.now(UTC)
    async with database.transaction() as conn:
        account = await store.ensure_account(conn, account_key, now)
        wanted = [
            code for s in await store.list_subscribers(conn, account_key) for code in s.events
        ]
    codes = events.amo_codes(wanted)
    if not codes:
        raise RegistrationError(
            f"no subscriber of account {account_key} wants an amoCRM event: add one first, "
            "e.g. `amogate webhooks add URL --events status_lead`"
        )
    return await _register(amo, database, settings, account, codes, reenabled=False)


async def _register(
    amo: AmoConnection,
    database: Database,
    settings: Settings,
    account: store.RelayAccount,
    codes: list[str],
    *,
    reenabled: bool,
) -> Registered:
    client = await amo.client()
    hook = await client.subscribe_webhook(settings.public_url + inbound_path(account), codes)
    webhook_id = hook.get("id") if isinstance(hook.get("id"), int) else None
    async with database.transaction() as conn:
        await store.set_registered(
            conn,
            account.account_key,
            events=codes,
            webhook_id=webhook_id,
            now=datetime.now(UTC),
            reenabled=reenabled,
        )
    log.info(
        "webhook.registered",
        account=account.account_key,
        events=codes,
        webhook_id=webhook_id,
        reenabled=reenabled,
    )
    prefix = f"{settings.public_url}/webhooks/amocrm/{account.account_key}/"
    return Registered(account.account_key, codes, webhook_id, prefix)


@dataclass(frozen=True)
class CheckResult:
    account_key: str
    state: str  # ok | updated (events changed) | reenabled | error
    detail: str = ""


async def check_account(
    amo: AmoConnection, database: Database, settings: Settings, account: store.RelayAccount
) -> CheckResult:
    """Read amoCRM's list for our webhook; save it again when amoCRM disabled or dropped it,
    or when the subscribers now want other amoCRM events than those registered."""
    codes = account.registered_events or []
    now = datetime.now(UTC)
    try:
        client = await amo.client()
        # The whole list, filtered here: the destination (it holds the secret) stays out of
        # URLs that proxies and access logs keep.
        destination = settings.public_url + inbound_path(account)
        found = [h for h in await client.list_webhooks() if h.get("destination") == destination]
        if found and not any(hook.get("disabled") for hook in found):
            async with database.transaction() as conn:
                await store.set_checked(conn, account.account_key, now=now, disabled=False)
                subscribed = await store.list_subscribers(conn, account.account_key)
            wanted = events.amo_codes(code for s in subscribed for code in s.events)
            if wanted and wanted != sorted(codes):
                # A subscriber was added or removed since: amoCRM sends what is wanted now.
                await _register(amo, database, settings, account, wanted, reenabled=False)
                return CheckResult(account.account_key, "updated", ", ".join(wanted))
            return CheckResult(account.account_key, "ok")
        reason = "disabled by amoCRM" if found else "missing from amoCRM's list"
        async with database.transaction() as conn:
            await store.set_checked(conn, account.account_key, now=now, disabled=True)
            if not account.amo_disabled:  # once per outage, not at every check while it lasts
                await store.offer_gateway_event(
                    conn,
                    store.GATEWAY_WEBHOOK_DISABLED,
                    {"account": account.account_key, "reason": reason, "events": codes},
                    now=now,
                    account_key=account.account_key,
                )
        log.warning("webhook.disabled", account=account.account_key, reason=reason)
        await _register(amo, database, settings, account, codes, reenabled=True)
        return CheckResult(account.account_key, "reenabled", reason)
    except AmoError as exc:
        message = f"could not check amoCRM's webhook list: {type(exc).__name__}"
        async with database.transaction() as conn:
            await store.set_checked(conn, account.account_key, now=now, error=message)
        log.warning("webhook.check.failed", account=account.account_key, error=type(exc).__name__)
        return CheckResult(account.account_key, "error", message)


@dataclass
class WebhookCheck:
    """The periodic check, run by the relay worker between passes."""

    database: Database
    settings: Settings
    connection_for: ConnectionFor
    interval_s: float
    monotonic: Callable[[], float] = time.monotonic
    _next_at: float = field(default=0.0, init=False)

    def due(self) -> bool:
        return self.monotonic() >= self._next_at

    async def run_once(self) -> list[CheckResult]:
        self._next_at = self.monotonic() + self.interval_s
        if not self.settings.public_url:
            return []
        async with self.database.read() as conn:
            registered = [a for a in await store.list_accounts(conn) if a.registered_events]
        results = []
        for account in registered:
            amo = self.connection_for(account.account_key)
            if amo is not None:
                results.append(await check_account(amo, self.database, self.settings, account))
        return results


def ready_line(accounts: list[store.RelayAccount]) -> str | None:
    """What /health/ready says of the amoCRM webhooks (None: none registered). A disabled
    webhook does not make the gateway unready (leads still flow); it is named here and in
    /metrics, and the check saves it again."""
    registered = [a for a in accounts if a.registered_events]
    if not registered:
        return None
    problems = []
    for account in registered:
        if account.amo_disabled:
            problems.append(f"{account.account_key}: amoCRM disabled the webhook")
        elif account.check_error:
            problems.append(f"{account.account_key}: {account.check_error}")
    return "; ".join(problems) if problems else "ok"
