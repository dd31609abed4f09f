"""The `amogate` command line (typer)."""

from __future__ import annotations

import asyncio
import os
from typing import Annotated, Any

import typer

from amogate import __version__
from amogate.commands import accounts, auth, check, deliveries, forms, keys, webhooks, worker
from amogate.commands.ports import port_problem
from amogate.commands.startup import (
    EnvFileOption,
    check_database,
    env_source,
    fail,
    load_settings,
)
from amogate.settings import ENV_FILE_VARIABLE

__all__ = ["app", "check_database", "fail", "load_settings", "main"]

RUN_WORKER_ENV = "AMOGATE_RUN_WORKER"
SCHEMA_READY_ENV = "AMOGATE_SCHEMA_READY"  # serve took the schema step before its processes
APP_FACTORY = "amogate.app:create_app_from_environment"

app = typer.Typer(
    name="amogate",
    help="A self-hosted gateway between your forms, bots and shops and amoCRM / Kommo.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys.app, name="keys")
app.add_typer(deliveries.app, name="deliveries")
app.add_typer(auth.app, name="auth")
app.add_typer(accounts.app, name="accounts")
app.add_typer(forms.app, name="forms")
app.add_typer(webhooks.app, name="webhooks")
app.command("worker")(worker.run_worker)
app.command("check")(check.check)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"amogate {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Show version."),
    ] = False,
) -> None:
    """amogate command line."""


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(metavar="HOST", help="Interface to listen on (HOST).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(metavar="PORT", help="Port (PORT, default 9095).")
    ] = None,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Do not run the delivery worker in this process.")
    ] = False,
    processes: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            metavar="N",
            help="HTTP processes sharing the port (each with a delivery worker unless "
            "--no-worker); up to the number of cores.",
        ),
    ] = 1,
    env_file: EnvFileOption = None,
) -> None:
    """Run the gateway (HTTP API and, unless --no-worker, the delivery worker)."""
    import structlog
    import uvicorn

    from amogate.app import create_app
    from amogate.app_state import state_of
    from amogate.commands.runtime import prepare_schema
    from amogate.commands.serving import server_options
    from amogate.logging import configure_logging

    source = env_source(env_file)
    settings = load_settings(env_file)
    listen_host, listen_port = host or settings.host, port or settings.port
    if (problem := port_problem(listen_host, listen_port)) is not None:
        fail(f"{problem}: stop it, or choose another port with --port or PORT")
    configure_logging(
        log_format=settings.log_format,
        level=settings.log_level,
        error_log_path=settings.error_log_path if settings.log_errors else None,
        error_log_max_bytes=settings.error_log_max_bytes,
    )
    structlog.get_logger("amogate.cli").info(
        "settings.read",
        env_file=str(source.path) if source.path else None,
        message=source.describe(),
    )
    check_database(settings)
    # Once, before any process serves (and in a child process: see prepare_schema).
    prepare_schema(settings.database_url)
    options = server_options(
        listen_host, listen_port, forwarded_allow_ips=settings.forwarded_allow_ips
    )
    if processes > 1:
        # Each process builds its own app from the same (already validated) configuration.
        os.environ[RUN_WORKER_ENV] = "0" if no_worker else "1"
        os.environ[SCHEMA_READY_ENV] = "1"
        if source.path is not None:
            os.environ[ENV_FILE_VARIABLE] = str(source.path)
        uvicorn.run(APP_FACTORY, factory=True, workers=processes, **options)
        return
    application = create_app(settings, schema_ready=True)
    state_of(application).run_worker = not no_worker
    uvicorn.run(application, **options)


@db_app.command("upgrade")
def db_upgrade(env_file: EnvFileOption = None) -> None:
    """Create or migrate the database schema to the newest version."""
    from amogate.storage import migrate
    from amogate.storage.db import Database

    settings = load_settings(env_file)
    check_database(settings)

    async def run() -> str | None:
        db = Database(settings.database_url)
        try:
            await migrate.upgrade(db)
            return await migrate.current_revision(db)
        finally:
            await db.dispose()

    revision = asyncio.run(run())
    typer.echo(f"database schema at revision {revision}")


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(metavar="HOST", help="Interface to listen on.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(metavar="PORT", help="Port.")] = 9096,
    subdomain: Annotated[str, typer.Option(metavar="NAME", help="Account subdomain.")] = "sandbox",
    client_id: Annotated[
        str, typer.Option(metavar="ID", help="The integration's id (AMO_CLIENT_ID).")
    ] = "sandbox-client-id",
    client_secret: Annotated[
        str, typer.Option(metavar="SECRET", help="The integration's secret (AMO_CLIENT_SECRET).")
    ] = "sandbox-client-secret",  # noqa: S107 - the sandbox's documented default
    redirect_uri: Annotated[
        str,
        typer.Option(
            metavar="URL", help="The integration's Redirect URI (must equal AMO_REDIRECT_URI)."
        ),
    ] = "http://localhost:9095/oauth/callback",
    long_lived_token: Annotated[
        str | None, typer.Option(metavar="TOKEN", help="Also accept this long-lived token.")
    ] = None,
    access_token_ttl: Annotated[
        int, typer.Option(metavar="SECONDS", help="Access token lifetime.")
    ] = 86400,
    rate_limit: Annotated[
        int, typer.Option(metavar="N", help="Requests per second per token (0 = off).")
    ] = 7,
    account_id: Annotated[
        int | None,
        typer.Option(metavar="ID", help="The account's id (another id: another account)."),
    ] = None,
    webhook_timeout_s: Annotated[
        float,
        typer.Option(metavar="SECONDS", min=0.001, help="How long a webhook waits (amoCRM: 2)."),
    ] = 2.0,
    webhook_retry_factor: Annotated[
        float,
        typer.Option(
            metavar="X", min=0.000001, help="Scale amoCRM's webhook retry delays (0.001: faster)."
        ),
    ] = 1.0,
    webhook_disable_failures: Annotated[
        int,
        typer.Option(
            metavar="N", min=0, help="Disable a webhook after more than N failures (amoCRM: 100)."
        ),
    ] = 100,
    webhook_disable_window_s: Annotated[
        float,
        typer.Option(
            metavar="SECONDS", min=0.001, help="...within this many seconds (amoCRM: 7200)."
        ),
    ] = 7200.0,
) -> None:
    """Run the built-in amoCRM sandbox (an emulator of amoCRM API v4 and OAuth2)."""
    from amogate.amocrm.sandbox.config import DEFAULT_ACCOUNT_ID, SandboxConfig
    from amogate.amocrm.sandbox.server import run

    if (problem := port_problem(host, port)) is not None:
        fail(f"{problem}: stop it, or choose another port with --port")
    public_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
    config = SandboxConfig(
        subdomain=subdomain,
        client_id=client_id,
        client_secret=client_secret,
        redirect_uri=redirect_uri,
        long_lived_token=long_lived_token,
        access_token_ttl=access_token_ttl,
        rate_limit=rate_limit,
        public_url=f"http://{public_host}:{port}",
        account_id=account_id or DEFAULT_ACCOUNT_ID,
        webhook_timeout_s=webhook_timeout_s,
        webhook_retry_factor=webhook_retry_factor,
        webhook_disable_failures=webhook_disable_failures,
        webhook_disable_window_s=webhook_disable_window_s,
    )
    typer.echo(
        f"amoCRM sandbox on http://{public_host}:{port} (client id {client_id}, "
        f"Redirect URI {redirect_uri})"
    )
    run(config, host, port)


@app.command()
def demo(
    port: Annotated[
        int, typer.Option(metavar="PORT", help="Gateway port (a free one if taken).")
    ] = 9095,
    sandbox_port: Annotated[
        int, typer.Option(metavar="PORT", help="Sandbox port (a free one if taken).")
    ] = 9096,
) -> None:
    """Run the gateway connected to the built-in amoCRM sandbox, ready for curl."""
    from amogate.commands.demo import run_demo

    run_demo(port=port, sandbox_port=sandbox_port)


def without_type_tags(command: Any, parent: Any = None, name: str = "amogate") -> Any:
    """Help that shows what to type, not Python types: typer marks every parameter with its
    type (`<str>`, `<bool>`); here a value shows its metavar (NAME, PORT, PATH) and a flag
    shows nothing. (typer's click is its own copy, hence the duck typing.)"""
    ctx = command.context_class(command, info_name=name, parent=parent)
    params = list(command.params)
    help_option = command.get_help_option(ctx)
    if help_option is not None:
        params.append(help_option)
    for param in params:
        # An instance attribute shadows the method typer calls for the type column; an
        # argument's metavar is already its name.
        shown = None if param.param_type_name == "argument" else param.metavar
        param.display_type_rich = lambda ctx, shown=shown: shown
    for sub_name, sub in getattr(command, "commands", {}).items():
        without_type_tags(sub, ctx, sub_name)
    return command


def command() -> Any:
    """The `amogate` command as click runs it."""
    return without_type_tags(typer.main.get_command(app))


def main() -> None:
    command()(prog_name="amogate")
