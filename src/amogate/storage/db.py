"""Engine and transactions for SQLite and PostgreSQL.

SQLite: WAL journal, `synchronous=FULL` (a commit is on disk before it returns, so an
accepted lead survives a power loss; the group commit keeps that cheap; `normal` on request), a
busy timeout, foreign keys on, and every write transaction opened with `BEGIN IMMEDIATE` so two
processes never both believe they hold a row (SQLite's equivalent of `SELECT ... FOR UPDATE`).
PostgreSQL: asyncpg, row locks.

Engines are created with `hide_parameters=True`: a failing statement's error (which may reach a
log line) never carries the values it was given — a lead's names, phones and emails, a token.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import Table, event, insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_SYNCHRONOUS = ("full", "normal")

T = TypeVar("T")


def _json_text(value: Any) -> str:
    """JSON columns as text. orjson: payloads and raw requests are stored on every lead, and
    the standard library's encoder took a tenth of the intake's time. What orjson refuses (an
    integer beyond 64 bits in a visitor's request, a key that is not text) is written by the
    standard library, exactly; reading stays with the standard library, which keeps such an
    integer exact where orjson would make it a float."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


def async_url(url: str) -> str:
    """Normalise a user's DATABASE_URL to the async driver we ship with."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgresql+psycopg2", "postgresql+psycopg"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if (
        parsed.get_backend_name() != "sqlite"
        or not parsed.database
        or parsed.database == ":memory:"
    ):
        return None
    return Path(parsed.database)


class Database:
    """Owns the engine. `transaction()` is the one way code under `storage/` writes."""

    def __init__(self, url: str, *, echo: bool = False, synchronous: str = "full") -> None:
        if synchronous not in SQLITE_SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {SQLITE_SYNCHRONOUS}")
        self.url = async_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        kwargs: dict[str, Any] = {
            "echo": echo,
            "hide_parameters": True,
            "json_serializer": _json_text,
        }
        if self.is_sqlite:
            path = sqlite_path(self.url)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        else:
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        self._write_lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self._group: _GroupCommit | None = None
        if self.is_sqlite:
            _configure_sqlite(self.engine, synchronous)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: BEGIN IMMEDIATE on SQLite, READ COMMITTED on PostgreSQL.

        On SQLite the writers of this process also queue on an asyncio lock first: SQLite has
        one writer at a time anyway, and waiting here hands the lock over at once, where
        waiting in SQLite's busy handler sleeps in growing steps (tens of ms under load).
        Other processes still wait in the busy handler."""
        if not self.is_sqlite:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._sqlite_writer(), self.engine.begin() as conn:
            yield conn

    async def grouped(self, unit: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run a small write `unit` in a transaction shared with the units other coroutines
        submit meanwhile (group commit), and return its result once that transaction has
        COMMITTED — so "returned" still means "durable". Units that arrive while a batch
        commits form the next batch: under load one commit serves many requests. If a unit
        raises, the batch is rolled back and its units are run again one by one, so one bad
        unit never takes the others down with it."""
        loop = asyncio.get_running_loop()
        if self._group is None or self._group.loop is not loop:
            self._group = _GroupCommit(self, loop)
        return await self._group.submit(unit)

    async def grouped_insert(self, table: Table, values: dict[str, Any]) -> None:
        """Insert one row through the group commit: the rows of a batch go to the database in
        one multi-row statement. Durable when it returns, like `grouped`."""
        await self.grouped(_InsertRow(table, values))

    def _sqlite_writer(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._write_lock is None or self._write_lock[0] is not loop:
            self._write_lock = (loop, asyncio.Lock())  # one per event loop (CLI runs several)
        return self._write_lock[1]

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only unit of work (on SQLite also a transaction; WAL keeps readers unblocked
        by the writer, and BEGIN IMMEDIATE only waits for other writers)."""
        async with self.engine.connect() as conn:
            yield await conn.execution_options(amogate_readonly=True)

    async def drop_old_page_copies(self) -> None:
        """After erasing personal data: SQLite's write-ahead log still holds copies of the
        pages as they were; copy the log into the database and empty it. (PostgreSQL keeps old
        row versions until VACUUM, which autovacuum runs; nothing to do here.)"""
        if not self.is_sqlite:
            return
        async with self.engine.connect() as conn:
            # On the driver's connection: outside any transaction, as a checkpoint must be.
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            await (await driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")).close()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


Unit = Callable[[AsyncConnection], Awaitable[Any]]


@dataclass(frozen=True)
class _InsertRow:
    """A unit that only inserts a row: batched into one executemany per table."""

    table: Table
    values: dict[str, Any]

    async def __call__(self, conn: AsyncConnection) -> None:
        await conn.execute(insert(self.table).values(self.values))


async def _run_batch(conn: AsyncConnection, units: list[Unit]) -> list[Any]:
    """Run the units in order; plain row inserts go last, one statement per table."""
    results: list[Any] = [None] * len(units)
    rows: dict[Table, list[dict[str, Any]]] = {}
    for i, unit in enumerate(units):
        if isinstance(unit, _InsertRow):
            rows.setdefault(unit.table, []).append(unit.values)
        else:
            results[i] = await unit(conn)
    for table, values in rows.items():
        await conn.execute(insert(table), values)
    return results


class _GroupCommit:
    MAX_BATCH = 200

    def __init__(self, database: Database, loop: asyncio.AbstractEventLoop) -> None:
        self.database = database
        self.loop = loop
        self._pending: list[tuple[Unit, asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, unit: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        future: asyncio.Future[T] = self.loop.create_future()
        self._pending.append((unit, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = self.loop.create_task(self._flush(), name="amogate-group-commit")
        # Shielded: a caller that goes away does not cancel the commit its unit is part of.
        return await asyncio.shield(future)

    async def _flush(self) -> None:
        while self._pending:
            batch = self._pending[: self.MAX_BATCH]
            del self._pending[: self.MAX_BATCH]
            try:
                async with self.database.transaction() as conn:
                    results = await _run_batch(conn, [unit for unit, _ in batch])
            except Exception:  # retried one by one below, so each unit fails alone
                await self._one_by_one(batch)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def _one_by_one(self, batch: list[tuple[Unit, asyncio.Future[Any]]]) -> None:
        for unit, future in batch:
            try:
                async with self.database.transaction() as conn:
                    result = await unit(conn)
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(result)


def _configure_sqlite(engine: AsyncEngine, synchronous: str) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous.upper()}")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # Erased or deleted data is overwritten in the file, not just unlinked from the b-tree.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        readonly = conn.get_execution_options().get("amogate_readonly", False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")
