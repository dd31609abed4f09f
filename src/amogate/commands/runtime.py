"""The common start of CLI commands that use the database: open it, make sure the schema is
current (SQLite is migrated on the spot; PostgreSQL needs `amogate db upgrade`), run the
command's coroutine, close it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from amogate.commands.startup import fail
from amogate.storage import migrate
from amogate.storage.db import Database

T = TypeVar("T")

SCHEMA_OUTDATED = "the database schema is not up to date: run `amogate db upgrade`"


class SchemaOutdated(Exception):
    pass


def run_on_database(database_url: str, action: Callable[[Database], Awaitable[T]]) -> T:
    """Run `action(database)`; ends the program with one line when the schema is outdated."""

    async def go() -> T:
        db = Database(database_url)
        try:
            if db.is_sqlite:
                await migrate.upgrade(db)
            elif not await migrate.is_up_to_date(db):
                raise SchemaOutdated
            return await action(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(go())
    except SchemaOutdated:
        fail(SCHEMA_OUTDATED)
