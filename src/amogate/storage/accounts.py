"""amoCRM account rows (tokens, connection state) and single-use OAuth states."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from amogate.storage.budget import insert_ignoring_conflict
from amogate.storage.tables import amo_accounts, amo_budget, oauth_states

DEFAULT_ACCOUNT = "default"

CONNECTED = "connected"
NEEDS_REAUTHORIZATION = "needs_reauthorization"
NOT_AUTHORIZED = "not_authorized"

OAUTH = "oauth"  # a refreshable OAuth pair
LONG_LIVED = "long_lived"  # a private integration's token: never refreshed


@dataclass(frozen=True)
class AccountRow:
    account_key: str
    base_domain: str | None
    amo_account_id: int | None
    token_kind: str
    access_token: str | None
    refresh_token: str | None
    access_expires_at: datetime | None
    refreshed_at: datetime | None
    state: str
    state_reason: str | None
    created_at: datetime
    updated_at: datetime
    tokens_file_imported_at: datetime | None = None
    tokens_file_fingerprint: str | None = None
    # An account added with `amogate accounts add` (all None for `default`).
    added_at: datetime | None = None
    amo_domain: str | None = None
    base_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    long_lived_token: str | None = None
    rate_limit: float | None = None
    contact_dedup: str | None = None

    def __repr__(self) -> str:  # never print a token
        return (
            f"AccountRow(account_key={self.account_key!r}, state={self.state!r}, "
            f"kind={self.token_kind!r}, expires={self.access_expires_at!r})"
        )

    @property
    def has_token(self) -> bool:
        return bool(self.access_token)


def _row(mapping: Any) -> AccountRow:
    return AccountRow(**{c.name: mapping[c.name] for c in amo_accounts.columns})


async def get(conn: AsyncConnection, key: str = DEFAULT_ACCOUNT) -> AccountRow | None:
    row = (
        (await conn.execute(select(amo_accounts).where(amo_accounts.c.account_key == key)))
        .mappings()
        .first()
    )
    return _row(row) if row else None


async def lock(conn: AsyncConnection, key: str, now: datetime) -> AccountRow:
    """The account row, locked until the transaction ends (creating it if missing).

    PostgreSQL: `SELECT ... FOR UPDATE`. SQLite: the transaction already holds the database's
    write lock (`BEGIN IMMEDIATE`), which serialises every writer the same way."""
    locking = select(amo_accounts).where(amo_accounts.c.account_key == key).with_for_update()
    row = (await conn.execute(locking)).mappings().first()
    if row is not None:
        return _row(row)
    # First use: two processes may both find nothing to lock (PostgreSQL); one inserts, the
    # other inserts nothing, and both then lock the same row.
    await conn.execute(
        insert_ignoring_conflict(conn, amo_accounts).values(
            account_key=key,
            token_kind=OAUTH,
            state=NOT_AUTHORIZED,
            created_at=now,
            updated_at=now,
        )
    )
    row = (await conn.execute(locking)).mappings().first()
    assert row is not None
    return _row(row)


async def save_tokens(
    conn: AsyncConnection,
    key: str,
    *,
    access_token: str,
    refresh_token: str | None,
    expires_at: datetime | None,
    kind: str,
    now: datetime,
    base_domain: str | None = None,
    refreshed: bool = True,
) -> None:
    values: dict[str, Any] = {
        "access_token": access_token,
        "refresh_token": refresh_token,
        "access_expires_at": expires_at,
        "token_kind": kind,
        "state": CONNECTED,
        "state_reason": None,
        "updated_at": now,
    }
    if refreshed:
        values["refreshed_at"] = now
    if base_domain:
        values["base_domain"] = base_domain
    await conn.execute(update(amo_accounts).where(amo_accounts.c.account_key == key).values(values))


async def mark_tokens_file_imported(
    conn: AsyncConnection, key: str, *, now: datetime, fingerprint: str
) -> None:
    await conn.execute(
        update(amo_accounts)
        .where(amo_accounts.c.account_key == key)
        .values(tokens_file_imported_at=now, tokens_file_fingerprint=fingerprint)
    )


async def set_state(
    conn: AsyncConnection, key: str, state: str, reason: str | None, now: datetime
) -> None:
    await conn.execute(
        update(amo_accounts)
        .where(amo_accounts.c.account_key == key)
        .values(state=state, state_reason=reason, updated_at=now)
    )


async def set_account_id(conn: AsyncConnection, key: str, amo_account_id: int) -> None:
    await conn.execute(
        update(amo_accounts)
        .where(amo_accounts.c.account_key == key)
        .values(amo_account_id=amo_account_id)
    )


# --- accounts added with `amogate accounts add` ----------------------------------------------


async def added(conn: AsyncConnection) -> list[AccountRow]:
    """Every added account (not `default`), by name."""
    rows = await conn.execute(
        select(amo_accounts)
        .where(amo_accounts.c.added_at.is_not(None))
        .order_by(amo_accounts.c.account_key)
    )
    return [_row(row) for row in rows.mappings()]


async def add(conn: AsyncConnection, key: str, *, now: datetime, **settings: Any) -> bool:
    """Record an added account with its settings (see tables.amo_accounts); False when an
    account of that name exists already."""
    existing = await get(conn, key)
    if existing is not None and (existing.added_at is not None or key == DEFAULT_ACCOUNT):
        return False
    if existing is None:
        await conn.execute(
            insert_ignoring_conflict(conn, amo_accounts).values(
                account_key=key,
                token_kind=OAUTH,
                state=NOT_AUTHORIZED,
                created_at=now,
                updated_at=now,
            )
        )
    result = await conn.execute(
        update(amo_accounts)
        .where(amo_accounts.c.account_key == key, amo_accounts.c.added_at.is_(None))
        .values(added_at=now, updated_at=now, **settings)
    )
    return result.rowcount == 1


async def change(conn: AsyncConnection, key: str, *, now: datetime, **settings: Any) -> bool:
    """Change an added account's settings; False when there is no such account."""
    result = await conn.execute(
        update(amo_accounts)
        .where(amo_accounts.c.account_key == key, amo_accounts.c.added_at.is_not(None))
        .values(updated_at=now, **settings)
    )
    return result.rowcount == 1


async def remove(conn: AsyncConnection, key: str) -> bool:
    """Forget an added account: its tokens, settings and budget row."""
    result = await conn.execute(
        delete(amo_accounts).where(
            amo_accounts.c.account_key == key, amo_accounts.c.added_at.is_not(None)
        )
    )
    await conn.execute(delete(amo_budget).where(amo_budget.c.account_key == key))
    return result.rowcount == 1


# --- OAuth state ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OAuthState:
    state: str
    expires_at: datetime
    browser_digest: str | None  # None: made by `amogate auth url`, needs no browser cookie
    replace_account: bool
    account_key: str = DEFAULT_ACCOUNT


async def add_oauth_state(
    conn: AsyncConnection,
    state: str,
    now: datetime,
    expires_at: datetime,
    *,
    browser_digest: str | None = None,
    replace_account: bool = False,
    account_key: str = DEFAULT_ACCOUNT,
) -> None:
    await conn.execute(delete(oauth_states).where(oauth_states.c.expires_at < now))
    await conn.execute(
        insert(oauth_states).values(
            state=state,
            created_at=now,
            expires_at=expires_at,
            browser_digest=browser_digest,
            replace_account=replace_account,
            account_key=account_key,
        )
    )


async def get_oauth_state(conn: AsyncConnection, state: str) -> OAuthState | None:
    """The stored state (expired or not), without consuming it."""
    row = (await conn.execute(select(oauth_states).where(oauth_states.c.state == state))).first()
    if row is None:
        return None
    return OAuthState(
        state=row.state,
        expires_at=row.expires_at,
        browser_digest=row.browser_digest,
        replace_account=bool(row.replace_account),
        account_key=row.account_key,
    )


async def consume_oauth_state(conn: AsyncConnection, state: str, now: datetime) -> bool:
    """True once for a state that was issued and has not expired; it is gone afterwards."""
    row = (
        await conn.execute(select(oauth_states.c.expires_at).where(oauth_states.c.state == state))
    ).first()
    if row is None:
        return False
    # Only the caller whose DELETE removed the row wins: two callbacks replaying one state
    # at the same moment both see it above, but only one deletes it.
    deleted = await conn.execute(delete(oauth_states).where(oauth_states.c.state == state))
    return deleted.rowcount == 1 and bool(row.expires_at > now)


async def purge_expired_states(conn: AsyncConnection, now: datetime) -> int:
    result = await conn.execute(delete(oauth_states).where(oauth_states.c.expires_at < now))
    return int(result.rowcount)
