"""`contact_links`: which contact this gateway created or linked for a normalised phone/email,
per account, and claims on keys whose contact is being created right now.

A claim makes two workers (processes sharing PostgreSQL, or passes of one worker) create ONE
contact for one new person: the first to insert the key's row owns it and creates the
contact; the others find the row claimed and wait for ``contact_id`` to appear. Inserting is
``ON CONFLICT DO NOTHING``: on PostgreSQL a concurrent insert of the same key waits for the
first transaction and then does nothing; on SQLite write transactions run one at a time. A
claim whose owner died runs out at ``claimed_until`` and can be taken over.

No phone or email is stored: a key is kept as the SHA-256 digest of the account and the key
(``digest``), so the retention purge leaves no personal data here; callers pass and get back
the keys themselves. Rows older than the links are trusted are deleted (``purge``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from amogate.storage.tables import amo_accounts, contact_links


@dataclass(frozen=True, slots=True)
class LinkRow:
    key: str
    contact_id: int | None
    claimed_by: str | None
    claimed_until: float | None
    updated_at: float

    def claimed_by_other(self, owner: str, now: float) -> bool:
        return (
            self.contact_id is None
            and self.claimed_by != owner
            and (self.claimed_until or 0.0) > now
        )


def digest(account: str, key: str) -> str:
    """What is stored for ``key`` (``phone:+998…``): its digest, never the phone or email."""
    return hashlib.sha256(f"{account}\0{key}".encode()).hexdigest()


def _row(m: RowMapping, key: str) -> LinkRow:
    return LinkRow(
        key=key,
        contact_id=None if m["contact_id"] is None else int(m["contact_id"]),
        claimed_by=m["claimed_by"],
        claimed_until=m["claimed_until"],
        updated_at=float(m["updated_at"]),
    )


def _digests(account: str, keys: Collection[str]) -> list[str]:
    return [digest(account, k) for k in keys]


def _insert(conn: AsyncConnection) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(contact_links)
    return sqlite.insert(contact_links)


async def rows(conn: AsyncConnection, account: str, keys: Collection[str]) -> dict[str, LinkRow]:
    if not keys:
        return {}
    by_digest = {digest(account, k): k for k in keys}
    result = await conn.execute(
        select(contact_links).where(
            contact_links.c.account_key == account,
            contact_links.c.contact_key.in_(list(by_digest)),
        )
    )
    found = {by_digest[r.contact_key]: r for r in result}
    return {key: _row(r._mapping, key) for key, r in found.items()}


async def claim(
    conn: AsyncConnection,
    account: str,
    keys: Collection[str],
    *,
    owner: str,
    now: float,
    until: float,
    links_from: float = 0.0,
) -> dict[str, LinkRow]:
    """Claim every key that has no row yet, only a claim that ran out, or a link older than
    ``links_from`` (unix seconds: too old to trust); answer every key's row as it now stands
    (``claimed_by == owner``: ours to create)."""
    if not keys:
        return {}
    await conn.execute(
        _insert(conn)
        .values(
            [
                {
                    "account_key": account,
                    "contact_key": digest(account, key),
                    "contact_id": None,
                    "claimed_by": owner,
                    "claimed_until": until,
                    "updated_at": now,
                }
                # one order everywhere (the stored digests): no deadlock between workers
                for key in sorted(keys, key=lambda k: digest(account, k))
            ]
        )
        .on_conflict_do_nothing()
    )
    await conn.execute(
        update(contact_links)
        .where(
            contact_links.c.account_key == account,
            contact_links.c.contact_key.in_(_digests(account, keys)),
            or_(
                and_(
                    contact_links.c.contact_id.is_(None),
                    or_(
                        contact_links.c.claimed_until.is_(None),
                        contact_links.c.claimed_until <= now,
                    ),
                ),
                and_(
                    contact_links.c.contact_id.is_not(None),
                    contact_links.c.updated_at < links_from,
                ),
            ),
        )
        .values(contact_id=None, claimed_by=owner, claimed_until=until, updated_at=now)
    )
    return await rows(conn, account, keys)


async def link(
    conn: AsyncConnection, account: str, keys: Collection[str], contact_id: int, *, now: float
) -> None:
    """``contact_id`` holds these keys (created or linked by this gateway); claims end."""
    await link_many(conn, account, dict.fromkeys(keys, contact_id), now=now)


async def link_many(
    conn: AsyncConnection, account: str, links: Mapping[str, int], *, now: float
) -> None:
    """Each key is held by its contact, in one statement; their claims end."""
    if not links:
        return
    statement = _insert(conn).values(
        [
            {
                "account_key": account,
                "contact_key": digest(account, key),
                "contact_id": int(contact_id),
                "claimed_by": None,
                "claimed_until": None,
                "updated_at": now,
            }
            for key, contact_id in sorted(links.items(), key=lambda kv: digest(account, kv[0]))
        ]
    )
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[contact_links.c.account_key, contact_links.c.contact_key],
            set_={
                "contact_id": statement.excluded.contact_id,
                "claimed_by": None,
                "claimed_until": None,
                "updated_at": statement.excluded.updated_at,
            },
        )
    )


async def release(conn: AsyncConnection, account: str, keys: Collection[str], owner: str) -> None:
    """Give up our claims on ``keys`` (the contact was not created)."""
    if not keys:
        return
    await conn.execute(
        delete(contact_links).where(
            contact_links.c.account_key == account,
            contact_links.c.contact_key.in_(_digests(account, keys)),
            contact_links.c.contact_id.is_(None),
            contact_links.c.claimed_by == owner,
        )
    )


async def forget_contact(conn: AsyncConnection, account: str, contact_id: int) -> None:
    """amoCRM no longer has this contact (deleted, merged, its unsorted item declined)."""
    await conn.execute(
        delete(contact_links).where(
            and_(
                contact_links.c.account_key == account,
                contact_links.c.contact_id == int(contact_id),
            )
        )
    )


async def purge(conn: AsyncConnection, *, before: float) -> int:
    """Delete links and claims last written before ``before`` (unix seconds)."""
    result = await conn.execute(delete(contact_links).where(contact_links.c.updated_at < before))
    return int(result.rowcount or 0)


async def account_dedup(conn: AsyncConnection, account: str) -> str | None:
    """The account's own ``CONTACT_DEDUP`` override, when the accounts table has one."""
    column = amo_accounts.c.get("contact_dedup")
    if column is None:
        return None
    value = (
        await conn.execute(select(column).where(amo_accounts.c.account_key == account))
    ).scalar()
    return None if value is None else str(value)
