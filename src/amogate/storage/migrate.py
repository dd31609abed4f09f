"""Run and inspect Alembic migrations from inside amogate (no alembic.ini needed)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from amogate.storage.db import Database

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _upgrade(connection: Connection) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(database: Database) -> None:
    """Bring the schema to the newest revision (safe to run from several processes)."""
    async with database.engine.connect() as conn:
        await conn.run_sync(_upgrade)
        await conn.commit()


async def current_revision(database: Database) -> str | None:
    async with database.read() as conn:
        return await conn.run_sync(_current)


async def is_up_to_date(database: Database) -> bool:
    return await current_revision(database) == head_revision()
