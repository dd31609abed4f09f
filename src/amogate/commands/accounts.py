"""`amogate accounts add|list|update|remove`: several amoCRM accounts in one gateway.

The `.env` account is `default`. An added account has its own host, tokens, budget, info cache
and queue share; a running gateway picks it up within seconds (or at the first request that
names it). Connect it with `amogate auth url --account NAME` (or `/oauth/authorize?account=NAME`),
and give its sites keys with `amogate keys create NAME --account NAME`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, NoReturn, TypeVar

import typer

from amogate.accounts import service
from amogate.accounts.config import NAME_RULE
from amogate.commands import output
from amogate.commands.runtime import run_on_database
from amogate.commands.startup import check_database, fail, load_settings
from amogate.settings import Settings
from amogate.storage.db import Database

app = typer.Typer(help="amoCRM accounts: add, list, update, remove.", no_args_is_help=True)
T = TypeVar("T")

NameArgument = Annotated[
    str, typer.Argument(metavar="NAME", help=f"The account's name in the gateway: {NAME_RULE}.")
]
RateOption = Annotated[
    float | None,
    typer.Option("--rate-limit", metavar="N", help="Requests/s to this account (AMO_RATE_LIMIT)."),
]
DedupOption = Annotated[
    str | None,
    typer.Option(
        "--dedup", metavar="MODE", help="Contact matching: phone,email, phone, email or off."
    ),
]


def _fail(message: str) -> NoReturn:
    fail(message)


def _run(action: Callable[[Database, Settings], Awaitable[T]]) -> T:
    settings = load_settings()
    check_database(settings)

    async def go(db: Database) -> T | service.AccountProblem:
        try:
            return await action(db, settings)
        except service.AccountProblem as problem:
            return problem

    result = run_on_database(settings.database_url, go)
    if isinstance(result, service.AccountProblem):
        _fail(str(result))
    return result


@app.command("add")
def add(
    name: NameArgument,
    domain: Annotated[
        str, typer.Option("--domain", metavar="HOST", help="The account host, e.g. b.amocrm.ru.")
    ],
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", metavar="URL", help="API base override (e.g. a sandbox)."),
    ] = None,
    client_id: Annotated[
        str | None,
        typer.Option("--client-id", metavar="ID", help="Integration id (default AMO_CLIENT_ID)."),
    ] = None,
    client_secret: Annotated[
        str | None,
        typer.Option(
            "--client-secret", metavar="S", help="Integration secret (default AMO_CLIENT_SECRET)."
        ),
    ] = None,
    long_lived_token: Annotated[
        str | None,
        typer.Option("--long-lived-token", metavar="T", help="A private integration's token."),
    ] = None,
    rate_limit: RateOption = None,
    dedup: DedupOption = None,
) -> None:
    """Add an amoCRM account."""

    async def action(db: Database, _: Settings) -> None:
        await service.add(
            db,
            name,
            domain=domain,
            base_url=base_url,
            client_id=client_id,
            client_secret=client_secret,
            long_lived_token=long_lived_token,
            rate_limit=rate_limit,
            dedup=dedup,
        )

    _run(action)
    typer.echo(f"Added account {name!r}.")
    if not long_lived_token:
        typer.echo(f"Connect it: amogate auth url --account {name}")


@app.command("list")
def list_command() -> None:
    """Every account: name, domain, connection state, queued and failed leads."""
    views = _run(service.list_accounts)
    if not views:
        typer.echo("No accounts: set AMO_DOMAIN in .env, or `amogate accounts add NAME --domain`.")
        return
    output.table(
        ("NAME", "DOMAIN", "STATE", "RATE/S", "DEDUP", "QUEUED", "FAILED", "DELIVERED"),
        [
            (
                v.name,
                v.domain or v.base_url or "-",
                v.state,
                f"{v.rate_limit:g}",
                v.contact_dedup or "-",
                str(v.queued),
                str(v.failed),
                str(v.delivered),
            )
            for v in views
        ],
    )


@app.command("update")
def update(name: NameArgument, rate_limit: RateOption = None, dedup: DedupOption = None) -> None:
    """Change an added account's budget or contact matching."""

    async def action(db: Database, _: Settings) -> None:
        await service.update(db, name, rate_limit=rate_limit, dedup=dedup)

    _run(action)
    typer.echo(f"Updated account {name!r}.")


@app.command("remove")
def remove(
    name: NameArgument,
    force: Annotated[
        bool,
        typer.Option("--force", help="Remove even with undelivered leads (they fail, unsent)."),
    ] = False,
) -> None:
    """Remove an added account (refused while it has undelivered leads, unless --force)."""

    async def action(db: Database, _: Settings) -> int:
        return await service.remove(db, name, force=force)

    failed = _run(action)
    suffix = f"; {failed} undelivered lead(s) marked failed" if failed else ""
    typer.echo(f"Removed account {name!r}{suffix}.")
