"""`amogate keys create|list|revoke`: API keys for sites, bots and operators.

A new key is printed once and stored only as its SHA-256 digest. Scopes: leads:write,
info:read, deliveries:read, admin. Origins limit which browser sites may use the key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, NoReturn, TypeVar
from urllib.parse import urlsplit

import typer

from amogate.api.auth import SCOPES, key_digest
from amogate.commands import output
from amogate.commands.runtime import run_on_database
from amogate.storage import api_keys
from amogate.storage.db import Database

app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)

DEFAULT_SCOPES = ("leads:write",)
T = TypeVar("T")


def _fail(message: str) -> NoReturn:
    from amogate.commands.startup import fail

    fail(message)


def _run(action: Callable[[Database], Awaitable[T]]) -> T:
    """Run `action` against the configured database with an up-to-date schema."""
    from amogate.commands.startup import check_database, load_settings

    settings = load_settings()
    check_database(settings)
    return run_on_database(settings.database_url, action)


def _origin(value: str) -> str:
    origin = value.strip().rstrip("/")
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
        _fail(f"--origin {value!r} must look like https://site.uz")
    return origin


@app.command("create")
def create(
    name: Annotated[
        str,
        typer.Argument(metavar="NAME", help="A unique name, e.g. the site or bot it is for."),
    ],
    scope: Annotated[
        list[str] | None,
        typer.Option(
            "--scope",
            metavar="SCOPE",
            help=f"Repeatable: {', '.join(SCOPES)} (default: leads:write only).",
        ),
    ] = None,
    origin: Annotated[
        list[str] | None,
        typer.Option(
            "--origin", metavar="URL", help="Repeatable: a browser site allowed to use the key."
        ),
    ] = None,
    rate_per_minute: Annotated[
        int | None,
        typer.Option("--rate-per-minute", min=1, metavar="N", help="Requests per minute."),
    ] = None,
) -> None:
    """Create a key and print it once (only its digest is stored)."""
    name = name.strip()
    if not name or len(name) > 128:
        _fail("the key name must be 1 to 128 characters")
    scopes = sorted(set(scope or DEFAULT_SCOPES))
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        _fail(f"unknown scope {unknown[0]!r}: use {', '.join(SCOPES)}")
    origins = sorted({_origin(o) for o in origin or ()})
    key = api_keys.generate_key()
    key_id = api_keys.new_id()

    async def store(db: Database) -> bool:
        async with db.transaction() as conn:
            if await api_keys.by_name(conn, name) is not None:
                return False
            await api_keys.create(
                conn,
                key_id=key_id,
                name=name,
                key_hash=key_digest(key),
                scopes=scopes,
                origins=origins,
                rate_per_minute=rate_per_minute,
                now=datetime.now(UTC),
            )
        return True

    if not _run(store):
        _fail(f"a key named {name!r} already exists")
    typer.echo(f"Created API key {name!r} (id {key_id}), scopes: {', '.join(scopes)}")
    typer.echo("Store it now: it is shown only once.")
    typer.echo(key)


@app.command("list")
def list_keys() -> None:
    """Show the keys (never the keys themselves)."""

    async def load(db: Database) -> list[api_keys.ApiKeyRow]:
        async with db.read() as conn:
            return await api_keys.list_all(conn)

    rows = _run(load)
    if not rows:
        typer.echo("No API keys (the admin key comes from API_KEY).")
        return
    header = ("NAME", "ID", "SCOPES", "ORIGINS", "LIMIT/MIN", "CREATED", "LAST USED", "REVOKED")
    output.table(
        header,
        [
            (
                r.name,
                r.id,
                ",".join(r.scopes) or "-",
                ",".join(r.origins) or "-",
                str(r.rate_per_minute) if r.rate_per_minute else "-",
                output.utc_time(r.created_at),
                output.utc_time(r.last_used_at),
                output.utc_time(r.revoked_at),
            )
            for r in rows
        ],
    )


@app.command("revoke")
def revoke(
    name_or_id: Annotated[str, typer.Argument(metavar="NAME|ID", help="The key's name or id.")],
) -> None:
    """Revoke a key; every instance refuses it from the next request on."""

    async def do(db: Database) -> api_keys.ApiKeyRow | None:
        async with db.transaction() as conn:
            return await api_keys.revoke(conn, name_or_id, datetime.now(UTC))

    row = _run(do)
    if row is None:
        _fail(f"no API key named {name_or_id!r} or with that id")
    if row.revoked:
        typer.echo(f"API key {row.name!r} (id {row.id}) was already revoked")
    else:
        typer.echo(f"Revoked API key {row.name!r} (id {row.id})")
