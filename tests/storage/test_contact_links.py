"""`contact_links` on SQLite and PostgreSQL: one worker creates a new person's contact, the
others wait for it; a dead worker's claim runs out; links too old to trust are claimed anew."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from amogate.storage import contact_links, migrate, tables
from amogate.storage.db import Database

KEYS = ["phone:+998901234567", "email:a@example.uz"]


async def migrated(url: str) -> Database:
    db = Database(url)
    await migrate.upgrade(db)
    return db


async def test_the_first_claim_wins_and_the_others_see_it_until_the_link(
    database_url: str,
) -> None:
    db = await migrated(database_url)
    try:
        async with db.transaction() as conn:
            first = await contact_links.claim(conn, "acc", KEYS, owner="a", now=100, until=160)
        async with db.transaction() as conn:
            second = await contact_links.claim(conn, "acc", KEYS, owner="b", now=101, until=161)
        assert {r.claimed_by for r in first.values()} == {"a"}
        assert all(r.claimed_by_other("b", 101) for r in second.values())
        async with db.transaction() as conn:
            await contact_links.link(conn, "acc", KEYS, 777, now=102)
        async with db.transaction() as conn:
            third = await contact_links.claim(conn, "acc", KEYS, owner="b", now=103, until=163)
        assert {r.contact_id for r in third.values()} == {777}
        assert {r.claimed_by for r in third.values()} == {None}
        async with db.read() as conn:
            other_account = await contact_links.rows(conn, "other", KEYS)
        assert other_account == {}
    finally:
        await db.dispose()


async def test_concurrent_claims_of_one_key_have_exactly_one_owner(database_url: str) -> None:
    db = await migrated(database_url)
    try:

        async def claim(owner: str) -> str | None:
            async with db.transaction() as conn:
                rows = await contact_links.claim(
                    conn, "acc", KEYS[:1], owner=owner, now=100, until=160
                )
            return rows[KEYS[0]].claimed_by

        owners = await asyncio.gather(*(claim(f"w{n}") for n in range(8)))
        assert len(set(owners)) == 1
    finally:
        await db.dispose()


async def test_a_dead_workers_claim_runs_out_and_an_old_link_is_claimed_anew(
    database_url: str,
) -> None:
    db = await migrated(database_url)
    try:
        async with db.transaction() as conn:
            await contact_links.claim(conn, "acc", KEYS[:1], owner="dead", now=100, until=160)
            await contact_links.link(conn, "acc", KEYS[1:], 5, now=100)
        async with db.transaction() as conn:
            rows = await contact_links.claim(
                conn, "acc", KEYS, owner="alive", now=161, until=221, links_from=150
            )
        assert [(r.claimed_by, r.contact_id) for r in rows.values()] == [("alive", None)] * 2
        async with db.transaction() as conn:
            await contact_links.release(conn, "acc", KEYS, "alive")
            await contact_links.link(conn, "acc", KEYS, 9, now=170)
            await contact_links.forget_contact(conn, "acc", 9)
        async with db.read() as conn:
            assert await contact_links.rows(conn, "acc", KEYS) == {}
    finally:
        await db.dispose()


async def test_no_phone_or_email_is_stored_and_old_links_are_purged(database_url: str) -> None:
    db = await migrated(database_url)
    try:
        async with db.transaction() as conn:
            await contact_links.link(conn, "acc", KEYS[:1], 5, now=100)
            await contact_links.link(conn, "acc", KEYS[1:], 6, now=200)
        async with db.read() as conn:
            stored = [r.contact_key for r in await conn.execute(select(tables.contact_links))]
        assert sorted(stored) == sorted(contact_links.digest("acc", k) for k in KEYS)
        assert not any("+998" in s or "@" in s for s in stored)
        async with db.transaction() as conn:
            assert await contact_links.purge(conn, before=150) == 1
        async with db.read() as conn:
            left = await contact_links.rows(conn, "acc", KEYS)
        assert {k: r.contact_id for k, r in left.items()} == {KEYS[1]: 6}
    finally:
        await db.dispose()
