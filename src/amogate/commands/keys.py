"""`amogate keys create|list|revoke`: API keys for sites, bots and operators.

A new key is printed once and stored only as its SHA-256 digest. Scopes: leads:write,
info:read, deliveries:read, admin. Origins limit which browser sites may use the key. A key
acts on one amoCRM account (`--account`, default `default`). The rules live in `access.keys`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from amogate.access import keys
from amogate.accounts.config import DEFAULT
from amogate.commands import output
from amogate.commands.runtime import run_configured
from amogate.commands.startup import fail
from amogate.storage import api_keys
from amogate.storage.db import Database

app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)


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
            help=f"Repeatable: {', '.join(keys.SCOPES)} (default: leads:write only).",
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
        typer.Option("--rate-per-minute", metavar="N", help="Requests per minute."),
    ] = None,
    account: Annotated[
        str,
        typer.Option("--account", metavar="ACCOUNT", help="The amoCRM account the key acts on."),
    ] = DEFAULT,
) -> None:
    """Create a key and print it once (only its digest is stored)."""
    try:
        wanted = keys.key_request(
            name, scope or keys.DEFAULT_SCOPES, origin or (), rate_per_minute, account
        )
    except keys.KeyProblem as problem:
        fail(problem.text)

    async def store(db: Database) -> keys.IssuedKey | keys.KeyProblem:
        try:
            return await keys.create_key(db, wanted)
        except keys.KeyProblem as problem:
            return problem

    issued = run_configured(store)
    if isinstance(issued, keys.KeyProblem):
        fail(issued.text)
    # The account is named only when it is not `default` (single-account setups see no change).
    owner = "" if wanted.account == DEFAULT else f" for account {wanted.account!r}"
    typer.echo(
        f"Created API key {wanted.name!r} (id {issued.key_id}){owner}, "
        f"scopes: {', '.join(wanted.scopes)}"
    )
    typer.echo("Store it now: it is shown only once.")
    typer.echo(issued.key)


@app.command("list")
def list_keys() -> None:
    """Show the keys (never the keys themselves)."""

    rows = run_configured(keys.list_keys)
    if not rows:
        typer.echo("No API keys (the admin key comes from API_KEY).")
        return
    # The ACCOUNT column appears once a key belongs to an account other than `default`.
    accounts = any(r.account_key != DEFAULT for r in rows)
    header = ("NAME", "ID", *(("ACCOUNT",) if accounts else ()), "SCOPES", "ORIGINS")
    output.table(
        (*header, "LIMIT/MIN", "CREATED", "LAST USED", "REVOKED"),
        [
            (
                r.name,
                r.id,
                *((r.account_key,) if accounts else ()),
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
        return await keys.revoke_key(db, name_or_id)

    row = run_configured(do)
    if row is None:
        fail(f"no API key named {name_or_id!r} or with that id")
    if row.revoked:
        typer.echo(f"API key {row.name!r} (id {row.id}) was already revoked")
    else:
        typer.echo(f"Revoked API key {row.name!r} (id {row.id})")
