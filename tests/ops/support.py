"""Helpers for the operations tests: issue keys as the CLI does, run several app instances
over one database, and a settable clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from fastapi import FastAPI

from amogate.access.keys import ApiKeyAuthenticator, key_digest
from amogate.app import create_app
from amogate.app_state import state_of
from amogate.settings import Settings
from amogate.storage import api_keys, migrate
from amogate.storage.db import Database


@dataclass
class FakeClock:
    """Unix seconds, moved by hand."""

    now: float

    def __call__(self) -> float:
        return self.now


async def migrated(url: str) -> None:
    db = Database(url)
    try:
        await migrate.upgrade(db)
    finally:
        await db.dispose()


async def issue_key(
    url: str,
    name: str,
    scopes: Sequence[str],
    *,
    origins: Sequence[str] = (),
    rate_per_minute: int | None = None,
) -> tuple[str, str]:
    """Store a new key the way `amogate keys create` does; (key, id)."""
    key = api_keys.generate_key()
    key_id = api_keys.new_id()
    db = Database(url)
    try:
        async with db.transaction() as conn:
            await api_keys.create(
                conn,
                key_id=key_id,
                name=name,
                key_hash=key_digest(key),
                scopes=list(scopes),
                origins=list(origins),
                rate_per_minute=rate_per_minute,
                now=datetime.now(UTC),
            )
    finally:
        await db.dispose()
    return key, key_id


async def revoke_key(url: str, name_or_id: str) -> None:
    db = Database(url)
    try:
        async with db.transaction() as conn:
            assert await api_keys.revoke(conn, name_or_id, datetime.now(UTC)) is not None
    finally:
        await db.dispose()


async def key_row(url: str, name: str) -> api_keys.ApiKeyRow:
    db = Database(url)
    try:
        async with db.read() as conn:
            row = await api_keys.by_name(conn, name)
    finally:
        await db.dispose()
    assert row is not None
    return row


@asynccontextmanager
async def instances(
    settings: Settings, count: int, *, clock: FakeClock | None = None
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """`count` gateway apps, each with its own engine, sharing `settings.database_url`."""
    async with AsyncExitStack() as stack:
        clients: list[httpx.AsyncClient] = []
        for _ in range(count):
            app: FastAPI = create_app(settings, background=False)
            if clock is not None:
                state_of(app).authenticator = ApiKeyAuthenticator(
                    settings.api_key.get_secret_value(), clock=clock
                )
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://gateway.test"
            )
            clients.append(await stack.enter_async_context(client))
        yield clients
