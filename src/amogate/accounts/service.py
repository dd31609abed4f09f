"""Adding, listing, changing and removing accounts: the rules the CLI and the admin page share.

Settings are checked here, once (name, host, API base, budget, contact matching); a refusal is
an `AccountProblem` with a message fit to show. Removing an account that still has leads to
deliver is refused unless forced; forced, those leads fail (they stay in the table, never
sent), so nothing is lost silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from amogate.accounts.config import DEFAULT, InvalidAccountName, check_name
from amogate.contacts.matching import parse_dedup
from amogate.settings import Settings
from amogate.storage import accounts as store
from amogate.storage import deliveries
from amogate.storage.db import Database

_HOST = re.compile(r"^(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
MAX_RATE_LIMIT = 50.0
UNDELIVERED = (deliveries.QUEUED, deliveries.SENDING, deliveries.RETRYING)


class AccountProblem(ValueError):
    """A refused change; `str()` says what is wrong and what to do."""


@dataclass(frozen=True)
class AccountView:
    """One account as `accounts list` and the admin page show it (never a secret)."""

    name: str
    domain: str
    base_url: str
    state: str
    token_kind: str | None
    rate_limit: float
    contact_dedup: str | None
    queued: int
    failed: int
    delivered: int


def _domain(value: str) -> str:
    host = value.strip().lower()
    if not _HOST.match(host):
        raise AccountProblem(f"--domain {value[:100]!r} must be an account host like b.amocrm.ru")
    return host


def _base_url(value: str) -> str:
    url = value.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise AccountProblem(f"--base-url {value[:100]!r} must be an http(s) URL")
    return url


def _rate(value: float) -> float:
    if not 0 < value <= MAX_RATE_LIMIT:
        raise AccountProblem(f"--rate-limit must be above 0 and at most {MAX_RATE_LIMIT:g}")
    return float(value)


def _dedup(value: str) -> str:
    try:
        parse_dedup(value)
    except ValueError as exc:
        raise AccountProblem(f"--dedup: {exc}") from None
    return ",".join(w.strip().lower() for w in value.split(","))


def _name(value: str) -> str:
    try:
        return check_name(value)
    except InvalidAccountName as exc:
        raise AccountProblem(str(exc)) from None


async def add(
    database: Database,
    name: str,
    *,
    domain: str,
    base_url: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    long_lived_token: str | None = None,
    rate_limit: float | None = None,
    dedup: str | None = None,
) -> None:
    """Add an account (its settings checked first; nothing is stored for a refused one)."""
    name = _name(name)
    if name == DEFAULT:
        raise AccountProblem("`default` is the .env account (AMO_DOMAIN, AMO_CLIENT_ID, ...)")
    if bool(client_id) != bool(client_secret):
        raise AccountProblem("give both --client-id and --client-secret, or neither")
    values = {
        "amo_domain": _domain(domain),
        "base_url": _base_url(base_url) if base_url else None,
        "client_id": client_id or None,
        "client_secret": client_secret or None,
        "long_lived_token": long_lived_token or None,
        "rate_limit": _rate(rate_limit) if rate_limit is not None else None,
        "contact_dedup": _dedup(dedup) if dedup is not None else None,
    }
    async with database.transaction() as conn:
        if not await store.add(conn, name, now=datetime.now(UTC), **values):
            raise AccountProblem(f"an account named {name!r} exists already")


async def update(
    database: Database, name: str, *, rate_limit: float | None, dedup: str | None
) -> None:
    """Change an added account's budget or contact matching (the .env account is changed in
    .env)."""
    if name == DEFAULT:
        raise AccountProblem(
            "`default` takes its settings from .env: change AMO_RATE_LIMIT / CONTACT_DEDUP there"
        )
    values: dict[str, object] = {}
    if rate_limit is not None:
        values["rate_limit"] = _rate(rate_limit)
    if dedup is not None:
        values["contact_dedup"] = _dedup(dedup)
    if not values:
        raise AccountProblem("nothing to change: give --rate-limit or --dedup")
    async with database.transaction() as conn:
        if not await store.change(conn, name, now=datetime.now(UTC), **values):
            raise AccountProblem(f"Account not found: {name}")


async def remove(database: Database, name: str, *, force: bool = False) -> int:
    """Remove an added account; how many undelivered leads were failed (only with `force`)."""
    if name == DEFAULT:
        raise AccountProblem("`default` is the .env account: it cannot be removed")
    now = datetime.now(UTC)
    async with database.transaction() as conn:
        row = await store.get(conn, name)
        if row is None or row.added_at is None:
            raise AccountProblem(f"Account not found: {name}")
        counts = (await deliveries.count_by_account(conn)).get(name, {})
        waiting = sum(counts.get(s, 0) for s in UNDELIVERED)
        if waiting and not force:
            raise AccountProblem(
                f"account {name!r} has {waiting} undelivered lead(s): wait for them, or remove "
                "it with --force (they fail and are never sent)"
            )
        failed = await deliveries.fail_undelivered(conn, name, now=now) if waiting else 0
        await store.remove(conn, name)
    return failed


async def list_accounts(database: Database, settings: Settings) -> list[AccountView]:
    """`default` (when configured in .env) and every added account, by name."""
    async with database.read() as conn:
        rows = {row.account_key: row for row in await store.added(conn)}
        default_row = await store.get(conn, DEFAULT)
        counts = await deliveries.count_by_account(conn)
    views: list[AccountView] = []
    if settings.amo_configured:
        views.append(
            _view(
                DEFAULT,
                settings.amo_domain,
                settings.amo_base_url,
                default_row,
                settings.amo_rate_limit,
                None,  # CONTACT_DEDUP from .env
                counts.get(DEFAULT, {}),
            )
        )
    for name, row in sorted(rows.items()):
        views.append(
            _view(
                name,
                row.amo_domain or "",
                row.base_url or "",
                row,
                row.rate_limit or settings.amo_rate_limit,
                row.contact_dedup,
                counts.get(name, {}),
            )
        )
    return views


def _view(
    name: str,
    domain: str,
    base_url: str,
    row: store.AccountRow | None,
    rate_limit: float,
    dedup: object,
    counts: dict[str, int],
) -> AccountView:
    connected = row is not None and row.has_token
    return AccountView(
        name=name,
        domain=domain or (row.base_domain if row is not None and row.base_domain else ""),
        base_url=base_url,
        state=row.state if row is not None and connected else store.NOT_AUTHORIZED,
        token_kind=row.token_kind if row is not None and connected else None,
        rate_limit=rate_limit,
        contact_dedup=str(dedup) if isinstance(dedup, str) else None,
        queued=sum(counts.get(s, 0) for s in UNDELIVERED),
        failed=counts.get(deliveries.FAILED, 0),
        delivered=counts.get(deliveries.DELIVERED, 0),
    )
