"""`amogate webhooks ...`: subscribers of amoCRM's events (and amogate's own), the inbound URL's
registration with amoCRM, and the relay deliveries (docs/webhooks.md)."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, NoReturn, TypeVar

import typer

from amogate.commands import output
from amogate.commands.runtime import run_on_database
from amogate.commands.startup import fail
from amogate.settings import Settings
from amogate.storage.db import Database

app = typer.Typer(
    help="amoCRM's events to your systems: subscribers, connect, deliveries.",
    no_args_is_help=True,
)
T = TypeVar("T")

AccountOption = Annotated[
    str, typer.Option("--account", metavar="ACCOUNT", help="The amoCRM account (name).")
]


def _settings() -> Settings:
    from amogate.commands.startup import check_database, load_settings
    from amogate.logging import configure_logging

    settings = load_settings()
    # The report goes to stdout and a failure is one line on stderr; of the gateway's own log
    # lines only errors are shown.
    configure_logging(log_format=settings.log_format, level="ERROR", stream=sys.stderr)
    check_database(settings)
    return settings


def _run(action: Callable[[Database], Awaitable[T]], settings: Settings | None = None) -> T:
    settings = settings or _settings()
    return run_on_database(settings.database_url, action)


def _fail(message: str, code: int = 2) -> NoReturn:
    fail(message, code=code)


@app.command("add")
def add_command(
    url: Annotated[str, typer.Argument(metavar="URL", help="Where to POST the events.")],
    events: Annotated[
        str,
        typer.Option(
            metavar="EVENTS",
            help="Comma list: amoCRM's codes (add_lead, update_lead, status_lead, "
            "responsible_lead, note_lead, add_contact, ...) and amogate's "
            "(gateway.delivery_failed, gateway.reauthorization_needed, "
            "gateway.webhook_disabled).",
        ),
    ] = "status_lead",
    account: AccountOption = "default",
) -> None:
    """Add a subscriber; prints its signing secret once."""
    from amogate.relay import subscribers
    from amogate.relay.events import parse_event_list

    try:
        subscribers.check_account(account)
        subscribers.check_url(url)
        parse_event_list(events)
    except ValueError as exc:
        _fail(str(exc))
    try:
        added = _run(lambda db: subscribers.add(db, url, account_key=account, event_list=events))
    except subscribers.SubscriberError as exc:
        _fail(str(exc))
    s = added.subscriber
    typer.echo(f"Subscriber {s.id} added for account {s.account_key}: {', '.join(s.events)}")
    typer.echo(f"URL: {s.url}")
    typer.echo(f"Signing secret (shown only now; keep it with the receiver): {added.secret}")
    if any(not code.startswith("gateway.") for code in s.events):
        typer.echo(f"Next: amogate webhooks connect --account {s.account_key}")


@app.command("list")
def list_command(
    account: Annotated[
        str | None, typer.Option("--account", metavar="ACCOUNT", help="Only this account.")
    ] = None,
) -> None:
    """List subscribers (never their secrets)."""
    from amogate.relay import subscribers

    rows = _run(lambda db: subscribers.listing(db, account))
    if not rows:
        typer.echo("No subscribers.")
        return
    output.table(
        ("ID", "ACCOUNT", "URL", "EVENTS", "CREATED"),
        [
            (s.id, s.account_key, s.url, ",".join(s.events), output.utc_time(s.created_at))
            for s in rows
        ],
    )


@app.command("remove")
def remove_command(
    subscriber_id: Annotated[str, typer.Argument(metavar="ID", help="The subscriber's id.")],
) -> None:
    """Remove a subscriber and its deliveries."""
    from amogate.relay import subscribers

    if not _run(lambda db: subscribers.remove(db, subscriber_id)):
        _fail(f"no subscriber {subscriber_id}", code=1)
    typer.echo(f"Subscriber {subscriber_id} removed")


@app.command("connect")
def connect_command(account: AccountOption = "default") -> None:
    """Register amogate's inbound URL with amoCRM for the subscribers' amoCRM events."""
    from amogate.amocrm.errors import AmoAuthError, AmoError
    from amogate.relay import registration
    from amogate.runtime import AccountNotFound, connection_for

    settings = _settings()
    if not settings.public_url:
        _fail(
            "PUBLIC_URL is not set: set it to the address amoCRM can reach this gateway at, "
            "e.g. PUBLIC_URL=https://gateway.example.uz"
        )

    async def action(
        db: Database,
    ) -> tuple[registration.Registered, registration.CheckResult]:
        from amogate.storage import relay as store

        amo = await connection_for(settings, db, account)
        try:
            await amo.start(keeper=False)
            done = await registration.connect(amo, db, settings, account)
            async with db.read() as conn:
                row = await store.get_account(conn, account)
            assert row is not None
            return done, await registration.check_account(amo, db, settings, row)
        finally:
            await amo.stop()

    try:
        done, checked = _run(action, settings)
    except AccountNotFound:
        if account == "default":
            _fail("amoCRM is not configured: set AMO_DOMAIN (or AMO_BASE_URL)")
        _fail(f"Account not found: {account}")
    except registration.RegistrationError as exc:
        _fail(str(exc), code=1)
    except AmoAuthError:
        _fail(
            "amoCRM is not connected (or needs reconnecting): open /admin or run "
            "`amogate auth url` first",
            code=1,
        )
    except AmoError as exc:
        status = f" (HTTP {exc.status})" if exc.status else ""
        _fail(f"amoCRM did not take the registration: {type(exc).__name__}{status}", code=1)
    typer.echo(
        f"amoCRM sends {', '.join(done.events)} of account {done.account_key} to "
        f"{done.public_prefix}<secret> (webhook {done.webhook_id or '-'})"
    )
    state = {"ok": "enabled", "updated": "enabled", "reenabled": "enabled again"}.get(
        checked.state, checked.detail
    )
    typer.echo(f"amoCRM's webhook list: {state}")


@app.command("deliveries")
def deliveries_command(
    status: Annotated[
        str | None,
        typer.Option(metavar="STATE", help="queued, sending, retrying, delivered or failed."),
    ] = None,
    account: Annotated[
        str | None, typer.Option("--account", metavar="ACCOUNT", help="Only this account.")
    ] = None,
    limit: Annotated[int, typer.Option(metavar="N", help="At most this many, newest first.")] = 50,
) -> None:
    """List events sent (or to send) to subscribers, newest first."""
    from amogate.storage import relay_queue as queue

    if status is not None and status not in queue.STATUSES:
        _fail(f"--status must be one of {', '.join(queue.STATUSES)}")

    async def action(db: Database) -> list[queue.RelayDelivery]:
        async with db.read() as conn:
            return await queue.list_deliveries(
                conn, status=status, account_key=account, limit=limit
            )

    rows = _run(action)
    if not rows:
        typer.echo("No webhook deliveries" + (f" in state {status}." if status else "."))
        return
    output.table(
        ("ID", "STATE", "EVENT", "EVENT ID", "URL", "ATTEMPTS", "NEXT", "LAST ERROR"),
        [
            (
                d.id,
                d.status,
                d.code,
                d.event_id,
                d.url,
                str(d.attempts),
                output.utc_time(d.next_at) if d.status in queue.PENDING else "-",
                (d.last_error or "-")[:60],
            )
            for d in rows
        ],
    )


@app.command("retry")
def retry_command(
    delivery_id: Annotated[
        str | None, typer.Argument(metavar="ID", help="The failed delivery to send again.")
    ] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Send every failed one again.")] = (
        False
    ),
) -> None:
    """Send failed webhook deliveries again (a running worker picks them up)."""
    from amogate.relay.runtime import keep_trying
    from amogate.storage import relay_queue as queue

    if (delivery_id is None) == (not failed):
        _fail("give a delivery id or --failed")
    settings = _settings()

    async def action(db: Database) -> int:
        async with db.transaction() as conn:
            return await queue.retry(
                conn,
                now=datetime.now(UTC),
                keep_trying=keep_trying(settings),
                delivery_id=delivery_id,
            )

    count = _run(action, settings)
    if delivery_id is not None and count == 0:
        _fail(f"webhook delivery {delivery_id} is unknown or has not failed", code=1)
    typer.echo(f"{count} webhook deliver{'y' if count == 1 else 'ies'} queued again")
