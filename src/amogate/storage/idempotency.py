"""`Idempotency-Key` records, scoped per API key and kept at least 24 h.

A record is made in the same transaction as the delivery it belongs to, so a key can never
point at a lead that was not stored (or the other way round). The first answer is saved on the
record once it is known, and replayed for a repeat of the same request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from amogate.storage.tables import idempotency_keys


@dataclass(frozen=True)
class IdempotencyRecord:
    api_key_id: str
    key: str
    body_hash: str
    delivery_id: str | None
    status_code: int | None
    response: dict[str, Any] | None
    created_at: datetime
    expires_at: datetime


async def claim(
    conn: AsyncConnection,
    *,
    api_key_id: str,
    key: str,
    body_hash: str,
    delivery_id: str,
    now: datetime,
    expires_at: datetime,
) -> IdempotencyRecord | None:
    """Record `key` for `delivery_id`. None when it is new; else the record made before (by
    this or a concurrent request), which the caller answers from instead of storing a lead.
    An expired record is replaced. Call inside the write transaction that stores the lead."""
    await conn.execute(
        delete(idempotency_keys).where(
            idempotency_keys.c.api_key_id == api_key_id,
            idempotency_keys.c.key == key,
            idempotency_keys.c.expires_at <= now,
        )
    )
    values = {
        "api_key_id": api_key_id,
        "key": key,
        "body_hash": body_hash,
        "delivery_id": delivery_id,
        "created_at": now,
        "expires_at": expires_at,
    }
    dialect = conn.dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    # ON CONFLICT DO NOTHING: on PostgreSQL a concurrent insert of the same key waits for the
    # first transaction and then does nothing, so exactly one request stores a lead.
    statement = insert(idempotency_keys).values(**values).on_conflict_do_nothing()
    result = await conn.execute(statement)
    if result.rowcount:
        return None
    existing = await get(conn, api_key_id=api_key_id, key=key)
    assert existing is not None
    return existing


async def get(conn: AsyncConnection, *, api_key_id: str, key: str) -> IdempotencyRecord | None:
    row = (
        await conn.execute(
            select(idempotency_keys).where(
                idempotency_keys.c.api_key_id == api_key_id, idempotency_keys.c.key == key
            )
        )
    ).first()
    if row is None:
        return None
    return IdempotencyRecord(
        api_key_id=row.api_key_id,
        key=row.key,
        body_hash=row.body_hash,
        delivery_id=row.delivery_id,
        status_code=row.status_code,
        response=row.response,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


async def save_response(
    conn: AsyncConnection,
    *,
    api_key_id: str,
    key: str,
    status_code: int,
    response: dict[str, Any],
) -> None:
    """Keep the first final answer; later ones never overwrite it."""
    await conn.execute(
        update(idempotency_keys)
        .where(
            idempotency_keys.c.api_key_id == api_key_id,
            idempotency_keys.c.key == key,
            idempotency_keys.c.status_code.is_(None),
        )
        .values(status_code=status_code, response=response)
    )


async def purge_expired(conn: AsyncConnection, *, now: datetime, limit: int = 1000) -> int:
    """Delete up to `limit` expired records (oldest first); how many went."""
    expired = (
        select(idempotency_keys.c.api_key_id, idempotency_keys.c.key)
        .where(idempotency_keys.c.expires_at <= now)
        .order_by(idempotency_keys.c.expires_at)
        .limit(limit)
    )
    result = await conn.execute(
        delete(idempotency_keys).where(
            tuple_(idempotency_keys.c.api_key_id, idempotency_keys.c.key).in_(expired)
        )
    )
    return int(result.rowcount)
