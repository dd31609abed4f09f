"""Issued API keys (`amogate keys ...`). Only the SHA-256 hex digest of a key is stored."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from amogate.storage.tables import api_keys

KEY_PREFIX = "amg_"
# last_used_at is a hint for operators, not an audit log: one write per key per minute at most.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class ApiKeyRow:
    id: str
    name: str
    key_hash: str
    scopes: tuple[str, ...]
    origins: tuple[str, ...]
    rate_per_minute: int | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    account_key: str = "default"  # the amoCRM account the key acts on

    def __repr__(self) -> str:  # the hash is not secret, but it has no business in a log line
        return f"ApiKeyRow(id={self.id!r}, name={self.name!r}, revoked={self.revoked})"

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def _row(mapping: Any) -> ApiKeyRow:
    return ApiKeyRow(
        id=mapping["id"],
        name=mapping["name"],
        key_hash=mapping["key_hash"],
        scopes=tuple(mapping["scopes"] or ()),
        origins=tuple(mapping["origins"] or ()),
        rate_per_minute=mapping["rate_per_minute"],
        created_at=mapping["created_at"],
        last_used_at=mapping["last_used_at"],
        revoked_at=mapping["revoked_at"],
        account_key=mapping["account_key"],
    )


def generate_key() -> str:
    """`amg_` and 32 URL-safe random characters (192 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(24)


def new_id() -> str:
    return secrets.token_hex(8)


async def create(
    conn: AsyncConnection,
    *,
    key_id: str,
    name: str,
    key_hash: str,
    scopes: list[str],
    origins: list[str],
    rate_per_minute: int | None,
    now: datetime,
    account_key: str = "default",
) -> None:
    await conn.execute(
        insert(api_keys).values(
            id=key_id,
            name=name,
            key_hash=key_hash,
            scopes=scopes,
            origins=origins,
            account_key=account_key,
            rate_per_minute=rate_per_minute,
            created_at=now,
        )
    )


async def by_name(conn: AsyncConnection, name: str) -> ApiKeyRow | None:
    row = (await conn.execute(select(api_keys).where(api_keys.c.name == name))).mappings().first()
    return _row(row) if row else None


async def by_hash(conn: AsyncConnection, key_hash: str) -> ApiKeyRow | None:
    row = (
        (await conn.execute(select(api_keys).where(api_keys.c.key_hash == key_hash)))
        .mappings()
        .first()
    )
    return _row(row) if row else None


async def list_all(conn: AsyncConnection) -> list[ApiKeyRow]:
    rows = (await conn.execute(select(api_keys).order_by(api_keys.c.created_at))).mappings()
    return [_row(r) for r in rows]


async def active_origins(conn: AsyncConnection) -> set[str]:
    rows = await conn.execute(select(api_keys.c.origins).where(api_keys.c.revoked_at.is_(None)))
    return {origin for (origins,) in rows for origin in (origins or ())}


async def revoke(conn: AsyncConnection, name_or_id: str, now: datetime) -> ApiKeyRow | None:
    """Revoke the key with this id (or else this name); the row as it was, None if unknown."""
    found = (
        (
            await conn.execute(
                select(api_keys).where(
                    or_(api_keys.c.id == name_or_id, api_keys.c.name == name_or_id)
                )
            )
        )
        .mappings()
        .all()
    )
    if not found:
        return None
    # An id wins over a name that happens to look like one.
    chosen = next((r for r in found if r["id"] == name_or_id), found[0])
    row = _row(chosen)
    if not row.revoked:
        await conn.execute(update(api_keys).where(api_keys.c.id == row.id).values(revoked_at=now))
    return row


def needs_touch(row: ApiKeyRow, now: datetime) -> bool:
    return row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION


async def touch(conn: AsyncConnection, key_id: str, now: datetime) -> None:
    """Set last_used_at unless another instance did so within the last minute."""
    await conn.execute(
        update(api_keys)
        .where(
            api_keys.c.id == key_id,
            or_(
                api_keys.c.last_used_at.is_(None),
                api_keys.c.last_used_at <= now - LAST_USED_RESOLUTION,
            ),
        )
        .values(last_used_at=now)
    )
