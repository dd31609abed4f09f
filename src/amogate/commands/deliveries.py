"""`amogate deliveries list|show|retry`: the lead delivery queue, for operators."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

from amogate.commands import output
from amogate.commands.runtime import run_on_database
from amogate.commands.startup import check_database, fail, load_settings
from amogate.deliveries.service import Deliveries
from amogate.storage import deliveries as store

app = typer.Typer(help="Lead deliveries: list, show, retry.", no_args_is_help=True)
T = TypeVar("T")


def _run(action: Callable[[Deliveries], Awaitable[T]]) -> T:
    """Run `action(deliveries)` against the configured database."""
    settings = load_settings()
    check_database(settings)
    return run_on_database(settings.database_url, lambda db: action(Deliveries.of(db, settings)))


@app.command("list")
def list_command(
    status: Annotated[
        str | None,
        typer.Option(metavar="STATE", help="queued, sending, retrying, delivered or failed."),
    ] = None,
    limit: Annotated[int, typer.Option(metavar="N", help="At most this many, newest first.")] = 50,
) -> None:
    """List deliveries, newest first."""
    if status is not None and status not in store.STATUSES:
        fail(f"--status must be one of {', '.join(store.STATUSES)}")

    async def action(deliveries: Deliveries) -> list[store.Delivery]:
        return await deliveries.recent(status=status, limit=limit)

    rows = _run(action)
    if not rows:
        typer.echo("No deliveries" + (f" in state {status}." if status else "."))
        return
    output.table(
        ("ID", "STATE", "CREATED", "ATTEMPTS", "AMOCRM LEAD", "CONTACT", "LEAD", "LAST ERROR"),
        [
            (
                d.id,
                d.status,
                output.utc_time(d.created_at),
                str(d.attempts),
                "-" if d.amo_lead_id is None else str(d.amo_lead_id),
                _contact(d),
                d.lead_name or "-",
                (d.last_error or "-")[:60],
            )
            for d in rows
        ],
    )


def _contact(d: store.Delivery) -> str:
    """The amoCRM contact, marked `matched` when it existed before the lead."""
    if d.amo_contact_id is None:
        return "-"
    return f"{d.amo_contact_id} matched" if d.contact_matched else str(d.amo_contact_id)


@app.command("show")
def show_command(
    delivery_id: Annotated[str, typer.Argument(metavar="ID", help="The delivery's id.")],
) -> None:
    """Show one delivery with its attempts (JSON)."""

    async def action(deliveries: Deliveries) -> dict[str, Any] | None:
        record = await deliveries.get(delivery_id)
        return None if record is None else record.view()

    view = _run(action)
    if view is None:
        fail(f"no delivery {delivery_id}", code=1)
    typer.echo(json.dumps(view, ensure_ascii=False, indent=2))


@app.command("retry")
def retry_command(
    delivery_id: Annotated[
        str | None, typer.Argument(metavar="ID", help="The delivery to send again.")
    ] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Send every failed delivery again.")] = (
        False
    ),
) -> None:
    """Send a failed delivery again now (a running worker picks it up)."""
    if (delivery_id is None) == (not failed):
        fail("give a delivery id or --failed")

    async def action(deliveries: Deliveries) -> int:
        if delivery_id is None:
            return await deliveries.requeue_failed()
        return int(await deliveries.requeue(delivery_id))

    count = _run(action)
    if delivery_id is not None and count == 0:
        fail(f"delivery {delivery_id} is unknown or already delivered", code=1)
    typer.echo(f"{count} deliver{'y' if count == 1 else 'ies'} queued again")
