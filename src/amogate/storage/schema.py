"""The schema step every entry point takes before it uses the database.

SQLite is migrated on the spot; PostgreSQL is only checked (its upgrade is `amogate db upgrade`,
run once per release). Alembic is imported here, when the step runs, not when amogate is: a
process that never takes the step (`serve`, whose schema step runs in a child process) never
holds Alembic's ~10 MB.
"""

from __future__ import annotations

from amogate.storage.db import Database

OUTDATED = "the database schema is not up to date: run `amogate db upgrade`"


class SchemaOutdated(Exception):
    pass


async def ensure_current(database: Database, *, check_postgresql: bool = True) -> None:
    """Migrate SQLite; check PostgreSQL (`check_postgresql`), raising `SchemaOutdated`."""
    from amogate.storage import migrate

    if database.is_sqlite:
        await migrate.upgrade(database)
    elif check_postgresql and not await migrate.is_up_to_date(database):
        raise SchemaOutdated
