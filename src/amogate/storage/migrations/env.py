"""Alembic environment: runs on a connection handed in by amogate (see storage/migrate.py),
or, when started from the `alembic` command line, on DATABASE_URL."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine

from amogate.storage.db import async_url
from amogate.storage.tables import metadata

config = context.config
target_metadata = metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Several instances may start at once: only one migrates, the others wait.
            connection.execute(text("SELECT pg_advisory_xact_lock(727274201)"))
        context.run_migrations()


def _run_offline() -> None:
    context.configure(
        url=async_url(os.environ.get("DATABASE_URL", "sqlite:///storage/amogate.db")),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_url() -> None:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get(
        "DATABASE_URL", "sqlite:///storage/amogate.db"
    )
    engine = create_async_engine(async_url(url))
    async with engine.connect() as conn:
        await conn.run_sync(_run)
        await conn.commit()
    await engine.dispose()


if context.is_offline_mode():
    _run_offline()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_run_from_url())
