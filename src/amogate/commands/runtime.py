"""The common start of CLI commands that use the database: open it, make sure the schema is
current (SQLite is migrated on the spot; PostgreSQL needs `amogate db upgrade`), run the
command's coroutine, close it."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog

from amogate.commands.startup import check_database, fail, load_settings
from amogate.storage.db import Database
from amogate.storage.schema import OUTDATED, SchemaOutdated, ensure_current

T = TypeVar("T")

OUTDATED_EXIT = 3  # the schema step's child: PostgreSQL's schema is outdated


def run_on_database(database_url: str, action: Callable[[Database], Awaitable[T]]) -> T:
    """Run `action(database)`; ends the program with one line when the schema is outdated."""

    async def go() -> T:
        db = Database(database_url)
        try:
            await ensure_current(db)
            return await action(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(go())
    except SchemaOutdated:
        fail(OUTDATED)


def run_configured(action: Callable[[Database], Awaitable[T]]) -> T:
    """`run_on_database` on the configured database, once it is known to answer."""
    settings = load_settings()
    check_database(settings)
    return run_on_database(settings.database_url, action)


def prepare_schema(database_url: str) -> None:
    """The schema step of `serve`, before it starts serving: in a child process where the
    platform forks, so the long-running server never loads Alembic (about 10 MB of its memory
    for good); in this process elsewhere. Ends the program with one line when it fails."""
    if not hasattr(os, "fork"):
        run_on_database(database_url, _nothing)
        return
    child = multiprocessing.get_context("fork").Process(
        target=_schema_step, args=(database_url,), name="amogate-schema"
    )
    child.start()
    child.join()
    if child.exitcode == OUTDATED_EXIT:
        fail(OUTDATED)
    if child.exitcode != 0:
        fail("the database schema could not be brought up to date (the reason is logged above)")


async def _nothing(database: Database) -> None:
    return None


def _schema_step(database_url: str) -> None:
    """In the child: the step; a failure is one log line and an exit code."""

    async def step() -> None:
        db = Database(database_url)
        try:
            await ensure_current(db)
        finally:
            await db.dispose()

    try:
        asyncio.run(step())
    except SchemaOutdated:
        sys.exit(OUTDATED_EXIT)
    except Exception as exc:
        structlog.get_logger("amogate.cli").error(
            "database.schema.failed", error=type(exc).__name__, detail=str(exc).split("\n")[0][:160]
        )
        sys.exit(1)
