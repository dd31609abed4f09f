"""`amogate forms create|list|remove`: public form endpoints for Tilda, HTML forms and builders.

`create` prints the endpoint once: only a digest of the form id is stored, like an API key.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from amogate.commands import output
from amogate.commands.runtime import run_configured
from amogate.commands.startup import fail
from amogate.forms import ids
from amogate.forms.captcha import PROVIDERS
from amogate.forms.registry import (
    DEFAULT_ACCOUNT,
    DEFAULT_HONEYPOT,
    Created,
    FormProblem,
    NewForm,
    create_form,
)
from amogate.storage import forms as form_store
from amogate.storage.db import Database

app = typer.Typer(help="Public forms: create, list, remove.", no_args_is_help=True)


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(metavar="NAME", help="A unique name, e.g. the site.")],
    account: Annotated[
        str, typer.Option("--account", metavar="ACCOUNT", help="The amoCRM account it feeds.")
    ] = DEFAULT_ACCOUNT,
    origin: Annotated[
        list[str] | None,
        typer.Option("--origin", metavar="URL", help="Repeatable: a site allowed to post."),
    ] = None,
    success_url: Annotated[
        str | None,
        typer.Option("--success-url", metavar="URL", help="Where a plain HTML post lands."),
    ] = None,
    pipeline_id: Annotated[
        int | None, typer.Option("--pipeline-id", min=1, metavar="N", help="Pipeline.")
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(
            "--mode",
            metavar="MODE",
            help="unsorted (default) or lead: the leads go straight into the pipeline's first "
            "stage.",
        ),
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", metavar="T", help="Repeatable: a lead tag.")
    ] = None,
    map_: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            metavar="FIELD=TARGET",
            help="Repeatable: TARGET is name, phone, email, comment, lead.name, lead.price "
            "or field:<field code or name>.",
        ),
    ] = None,
    honeypot: Annotated[
        str, typer.Option("--honeypot", metavar="FIELD", help="The hidden anti-spam field.")
    ] = DEFAULT_HONEYPOT,
    captcha: Annotated[
        str | None,
        typer.Option("--captcha", metavar="KIND", help=f"One of {', '.join(PROVIDERS)}."),
    ] = None,
    captcha_secret: Annotated[
        str | None,
        typer.Option("--captcha-secret", metavar="S", help="The captcha's server-side secret."),
    ] = None,
    rate_per_minute: Annotated[
        int | None,
        typer.Option(
            "--rate-per-minute",
            min=1,
            metavar="N",
            help="Posts per address per minute (default FORM_RATE_PER_MINUTE).",
        ),
    ] = None,
) -> None:
    """Create a form and print its endpoint (shown once)."""
    spec = NewForm(
        name=name,
        account=account,
        origins=origin or (),
        success_url=success_url,
        pipeline_id=pipeline_id,
        mode=mode,
        tags=tag or (),
        maps=map_ or (),
        honeypot=honeypot,
        captcha=captcha,
        captcha_secret=captcha_secret,
        rate_per_minute=rate_per_minute,
    )

    async def store(db: Database) -> Created | str:
        try:
            async with db.transaction() as conn:
                return await create_form(conn, spec, datetime.now(UTC))
        except FormProblem as exc:
            return str(exc)

    created = run_configured(store)
    if isinstance(created, str):
        fail(created)
    typer.echo(
        f"Created form {created.name!r} (id {created.handle}) for account {created.account!r}"
    )
    typer.echo("Post to this endpoint (shown only once; keep it with the form's page):")
    typer.echo(created.endpoint)
    if not created.origins:
        typer.echo("No --origin given: browsers' posts are refused; servers' posts are accepted.")


@app.command("list")
def list_forms() -> None:
    """Show the forms (the endpoints' first characters, never the whole ids)."""

    async def load(db: Database) -> tuple[list[form_store.FormRow], dict[str, int]]:
        async with db.read() as conn:
            rows = await form_store.list_all(conn)
            counts = await form_store.submission_counts(conn, [r.id for r in rows])
        return rows, counts

    rows, counts = run_configured(load)
    if not rows:
        typer.echo("No forms yet: amogate forms create NAME --origin https://site.uz")
        return
    header = ("NAME", "ID", "ACCOUNT", "ENDPOINT", "ORIGINS", "LIMIT/MIN", "POSTS", "CREATED")
    output.table(
        header,
        [
            (
                r.name,
                r.id,
                r.account_key,
                ids.endpoint(r.id_hint) + "…",
                ",".join(r.origins) or "-",
                str(r.rate_per_minute) if r.rate_per_minute else "-",
                str(counts.get(r.id, 0)),
                output.utc_time(r.created_at),
            )
            for r in rows
        ],
    )


@app.command("remove")
def remove(
    name_or_id: Annotated[str, typer.Argument(metavar="NAME|ID", help="The form's name or id.")],
) -> None:
    """Remove a form: its endpoint answers 404 from now on (its leads stay)."""

    async def do(db: Database) -> form_store.FormRow | None:
        async with db.transaction() as conn:
            return await form_store.remove(conn, name_or_id)

    row = run_configured(do)
    if row is None:
        fail(f"no form named {name_or_id!r} or with that id")
    typer.echo(f"Removed form {row.name!r} (id {row.id})")
