"""How the database is opened: SQLite fsyncs every commit by default (an answered lead survives
a power loss), overwrites erased data, and no engine puts a statement's values in its errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import IntegrityError

from amogate.storage import migrate
from amogate.storage.db import Database
from amogate.storage.tables import api_keys
from tests.conftest import make_settings


async def _pragma(db: Database, name: str) -> int:
    async with db.read() as conn:
        return int((await conn.execute(text(f"PRAGMA {name}"))).scalar_one())


@pytest.mark.parametrize(("setting", "level"), [("full", 2), ("normal", 1)])
async def test_sqlite_commits_are_synchronous_as_configured(
    tmp_path: Path, setting: str, level: int
) -> None:
    db = Database(f"sqlite:///{tmp_path}/s.db", synchronous=setting)
    try:
        assert await _pragma(db, "synchronous") == level
        assert await _pragma(db, "secure_delete") == 1
    finally:
        await db.dispose()


async def test_full_is_the_default_of_the_database_and_of_the_settings(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    db = Database(settings.database_url, synchronous=settings.sqlite_synchronous)
    plain = Database(f"sqlite:///{tmp_path}/plain.db")
    try:
        assert await _pragma(db, "synchronous") == 2
        assert await _pragma(plain, "synchronous") == 2
    finally:
        await db.dispose()
        await plain.dispose()


def test_an_unknown_synchronous_level_is_refused() -> None:
    with pytest.raises(ValueError, match="synchronous"):
        Database("sqlite://", synchronous="off")


async def test_a_failing_statements_error_carries_no_values(database_url: str) -> None:
    db = Database(database_url)
    secret = "alisher@example.uz-and-a-token"
    row = {
        "id": "k1",
        "name": secret,
        "key_hash": "h" * 64,
        "scopes": [],
        "origins": [],
        "created_at": datetime.now(UTC),
    }
    try:
        await migrate.upgrade(db)
        async with db.transaction() as conn:
            await conn.execute(insert(api_keys).values(row))
        with pytest.raises(IntegrityError) as caught:
            async with db.transaction() as conn:
                await conn.execute(insert(api_keys).values(row))  # the same primary key
    finally:
        await db.dispose()
    assert secret not in str(caught.value)
    assert "parameters hidden" in str(caught.value)
