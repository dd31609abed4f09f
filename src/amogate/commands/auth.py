"""`amogate auth url|exchange|status|refresh|export`: connect amoCRM from a server without a
browser.

`url` prints the consent page with a stored single-use state (finish in any browser: the
callback lands on the gateway; such states need no browser cookie, since making one needs shell
access). `exchange CODE` trades the code shown in the integration's settings for a token pair.
A code for a different amoCRM account than the connected one is refused unless `--replace`.
`status` prints one fact per line and never a token. `refresh` forces one refresh under the
same cross-process lock the gateway uses. `export PATH` writes the current pair in the original
gateway's tokens.json format, for going back to it.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar
from urllib.parse import urlsplit

import typer

from amogate.accounts.config import DEFAULT
from amogate.commands import output
from amogate.commands.runtime import run_on_database
from amogate.commands.startup import check_database, fail, load_settings
from amogate.connection.service import AmoConnection
from amogate.connection.tokens import utcnow
from amogate.runtime import AccountNotFound, connection_for
from amogate.settings import Settings
from amogate.storage import accounts
from amogate.storage.db import Database

app = typer.Typer(
    help="Connect amoCRM: consent URL, code exchange, status, refresh.", no_args_is_help=True
)

T = TypeVar("T")

RECONNECT_STEP = (
    "connect amoCRM: the admin page's Connect button, /oauth/authorize in a browser, "
    "or `amogate auth url`"
)


class _Failed(Exception):
    """Ends the command with one line on stderr and the given exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _fail(message: str, code: int = 1) -> NoReturn:
    fail(message, code)


AccountOption = Annotated[
    str,
    typer.Option("--account", metavar="NAME", help="The gateway's account (default `default`)."),
]


def _settings(account: str = DEFAULT) -> Settings:
    from amogate.logging import configure_logging

    settings = load_settings()
    # The report goes to stdout and a failure is one line on stderr; of the gateway's own log
    # lines only errors are shown (a warning would repeat that line as JSON).
    configure_logging(log_format=settings.log_format, level="ERROR", stream=sys.stderr)
    if account == DEFAULT and not settings.amo_configured:
        _fail("amoCRM is not configured: set AMO_DOMAIN (or AMO_BASE_URL)", 2)
    check_database(settings)
    return settings


def _run(
    settings: Settings, action: Callable[[AmoConnection], Awaitable[T]], account: str = DEFAULT
) -> T:
    """Run `action` with the connection of `account` on the configured database (schema up to
    date)."""

    async def with_connection(db: Database) -> T:
        try:
            amo = await connection_for(settings, db, account)
        except AccountNotFound:
            raise _Failed(f"Account not found: {account}", 2) from None
        try:
            return await action(amo)
        finally:
            await amo.stop()

    try:
        return run_on_database(settings.database_url, with_connection)
    except _Failed as exc:
        _fail(exc.message, exc.code)


def _default_host(settings: Settings) -> str:
    """The account's host (its domain, or the host of its API base)."""
    if settings.amo_domain:
        return settings.amo_domain
    return urlsplit(settings.amo_base_url).netloc


@app.command("url")
def url(
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Allow the consent to connect a different amoCRM account than the connected one.",
        ),
    ] = False,
    account: AccountOption = DEFAULT,
) -> None:
    """Print the consent URL (with a fresh single-use state) to open in a browser."""
    from amogate.connection import connect

    async def action(amo: AmoConnection) -> str:
        try:
            return await connect.new_consent_url(amo, replace_account=replace)
        except connect.ConnectError as exc:
            raise _Failed(exc.message, 2) from None

    typer.echo(_run(_settings(account), action, account))


@app.command("exchange")
def exchange(
    code: Annotated[
        str, typer.Argument(metavar="CODE", help="The authorization code from amoCRM.")
    ],
    referer: Annotated[
        str | None,
        typer.Option(
            metavar="HOST",
            help="Account host the code belongs to (default: AMO_DOMAIN / AMO_BASE_URL).",
        ),
    ] = None,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Connect even if the code belongs to a different amoCRM account than the "
            "connected one (every new lead goes there from then on).",
        ),
    ] = False,
    account: AccountOption = DEFAULT,
) -> None:
    """Exchange an authorization code (from the integration's settings) for tokens."""
    from amogate.connection import connect

    settings = _settings(account)

    async def action(amo: AmoConnection) -> connect.Connected:
        try:
            # The same referer check as the browser callback: the secret only goes to amoCRM.
            host = await connect.account_host(
                amo, referer or _default_host(amo.settings), replace_account=replace
            )
            return await connect.exchange(amo, code.strip(), host, replace_account=replace)
        except connect.ConnectError as exc:
            raise _Failed(exc.message) from None

    connected = _run(settings, action, account)
    name = connected.account_name or connected.base_domain
    suffix = f" (account id {connected.account_id})" if connected.account_id else ""
    typer.echo(f"connected to {name}{suffix}")


@app.command("status")
def status(account: AccountOption = DEFAULT) -> None:
    """Connection status, one fact per line (never a token). Exit 1 when not connected."""

    async def action(amo: AmoConnection) -> tuple[accounts.AccountRow | None, int]:
        # What `serve` does at start: install AMO_LONG_LIVED_TOKEN or import tokens.json.
        await amo.start(keeper=False)
        row = await amo.account_state()
        budget = await amo.limiter.state()
        paused = 0
        if budget is not None and budget.blocked_until > amo.limiter.clock():
            paused = int(budget.blocked_until - amo.limiter.clock())
        return row, paused

    row, paused = _run(_settings(account), action, account)
    lines = status_facts(row, paused_s=paused, now=utcnow())
    output.facts(lines)
    if dict(lines)["connected"] != "yes":
        raise typer.Exit(1)


def status_facts(
    row: accounts.AccountRow | None, *, paused_s: int, now: datetime
) -> list[tuple[str, str]]:
    """What `auth status` prints: whether amoCRM is connected first, then only facts that
    agree with it (an access token is never called valid beside "connected: no")."""
    if row is None or not row.has_token:
        return [
            ("connected", "no"),
            ("state", accounts.NOT_AUTHORIZED),
            ("next step", RECONNECT_STEP),
        ]
    connected = row.state == accounts.CONNECTED
    lines = [("connected", output.yes_no(connected)), ("state", row.state)]
    if not connected:
        lines.append(("reason", (row.state_reason or "the token was refused")[:200]))
        lines.append(("next step", RECONNECT_STEP))
    account = row.base_domain or "-"
    if row.amo_account_id:
        account += f" (id {row.amo_account_id})"
    lines.append(("account", account))
    long_lived = row.token_kind == accounts.LONG_LIVED
    lines.append(("token", "long-lived (never refreshed)" if long_lived else "oauth"))
    lines.append(("access token", _access_token_fact(row, connected=connected, now=now)))
    if not long_lived:
        lines.append(("refresh token", output.yes_no(bool(row.refresh_token))))
        lines.append(
            ("last refresh", output.utc_time(row.refreshed_at) if row.refreshed_at else "never")
        )
    if paused_s:
        lines.append(("calls paused", f"for {paused_s} s more (amoCRM answered 403)"))
    return lines


def _access_token_fact(row: accounts.AccountRow, *, connected: bool, now: datetime) -> str:
    expires = row.access_expires_at
    if not connected:
        return "not usable until amoCRM is connected again"
    if expires is None:
        return "valid, no expiry"
    if expires > now:
        return f"valid until {output.utc_time(expires)}"
    if row.token_kind == accounts.LONG_LIVED:
        return f"expired at {output.utc_time(expires)}"
    return f"expired at {output.utc_time(expires)}; renewed with the refresh token on next use"


@app.command("refresh")
def refresh(account: AccountOption = DEFAULT) -> None:
    """Refresh the token pair now (one refresh across every process sharing the database)."""
    from amogate.amocrm.errors import AmoAuthError, AmoError
    from amogate.connection import advice
    from amogate.storage import accounts

    async def action(amo: AmoConnection) -> str:
        await amo.start(keeper=False)
        row = await amo.account_state()
        if row is None or not row.has_token:
            raise _Failed("amoCRM is not connected: run `amogate auth url` or `auth exchange`")
        if row.token_kind == accounts.LONG_LIVED:
            raise _Failed("a long-lived token is in use: it cannot be refreshed")
        if row.state != accounts.CONNECTED:
            raise _Failed("amoCRM needs reauthorization: run `amogate auth url`")
        try:
            fresh = await amo.tokens.refresh_now(reason="cli")
        except AmoAuthError as exc:
            raise _Failed(f"amoCRM rejected the refresh ({exc.detail}): reauthorize") from None
        except AmoError as exc:
            reason = advice.api_error(exc, await amo.api_base())
            raise _Failed(f"the refresh failed, tokens are unchanged: {reason}") from None
        expires = fresh.access_expires_at
        return expires.isoformat() if expires else "unknown"

    expires = _run(_settings(account), action, account)
    typer.echo(f"refreshed: access token valid until {expires}")


@app.command("export")
def export(
    path: Annotated[
        Path,
        typer.Argument(
            metavar="PATH", help="Where to write tokens.json, e.g. storage/tokens.json."
        ),
    ],
) -> None:
    """Write the current token pair in the original gateway's tokens.json format.

    For going back to the PHP gateway: stop every amogate process first, then export, then start
    the PHP gateway. A running amogate keeps refreshing the pair, and each refresh uses up the
    refresh token in the exported file."""
    from amogate.connection.tokens import NotConnected

    async def action(amo: AmoConnection) -> str:
        try:
            row = await amo.tokens.export_pair(path)
        except NotConnected as exc:
            raise _Failed(exc.detail) from None
        expires = row.access_expires_at
        return expires.isoformat() if expires else "unknown"

    expires = _run(_settings(), action)
    typer.echo(f"wrote the token pair to {path} (access token valid until {expires})")
    typer.echo("stop every amogate process before the PHP gateway uses it: a refresh here")
    typer.echo("would use up the refresh token in the file.")
