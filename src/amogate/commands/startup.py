"""The start of every command: which `.env` is read, the settings, one clear line on failure.

Settings come from `--env-file PATH`, else `AMOGATE_ENV_FILE`, else `.env` in the current
folder, plus the environment (which wins). A refused configuration names the variable and says
which `.env` was read — or that none was found where amogate runs.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError

from amogate.settings import ENV_FILE_VARIABLE, EnvFile, Settings, find_env_file
from amogate.storage.db import Database

EnvFileOption = Annotated[
    Path | None,
    typer.Option(
        "--env-file",
        metavar="PATH",
        help="Read settings from this file instead of .env in the current folder.",
    ),
]


def fail(message: str, code: int = 2) -> NoReturn:
    """One clear line on stderr, then exit non-zero (no traceback)."""
    typer.echo(f"amogate: {message}", err=True)
    raise typer.Exit(code)


def env_source(env_file: Path | None = None) -> EnvFile:
    """The `.env` this command reads: --env-file, else AMOGATE_ENV_FILE, else ./.env."""
    explicit = env_file
    if explicit is None and os.environ.get(ENV_FILE_VARIABLE):
        explicit = Path(os.environ[ENV_FILE_VARIABLE])
    source = find_env_file(explicit)
    if explicit is not None and (source.path is None or not source.path.is_file()):
        fail(f"--env-file {explicit}: no such file")
    return source


def config_problem(exc: ValidationError) -> str:
    """The first configuration error, as one line naming the variable."""
    first = exc.errors(include_url=False)[0]
    variable = ".".join(str(p) for p in first["loc"]).upper() or "configuration"
    message = str(first["msg"]).removeprefix("Value error, ")
    return message if variable in message else f"{variable}: {message}"


def load_settings(env_file: Path | None = None, **overrides: object) -> Settings:
    """Settings from .env and the environment; a bad value ends the program with one line
    naming the variable and which .env was read."""
    source = env_source(env_file)
    try:
        return source.load(**overrides)
    except ValidationError as exc:
        fail(f"invalid configuration: {config_problem(exc)} ({source.hint()})")


def database_location(url: str) -> str:
    """Where a DATABASE_URL points, without its password."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"SQLite file {parsed.database}"
    host = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    return f"PostgreSQL at {host} (database {parsed.database})"


def database_problem(exc: BaseException, url: str) -> str:
    """Why the database cannot be reached, as a question to act on (no exception class)."""
    text = str(exc).splitlines()[0][:160] if str(exc) else "no answer"
    return f"cannot reach the {database_location(url)}: is it running and reachable? ({text})"


def check_database(settings: Settings) -> None:
    """End the program with one line when the database does not answer."""

    async def ping() -> None:
        db = Database(settings.database_url)
        try:
            await asyncio.wait_for(db.ping(), timeout=10)
        finally:
            await db.dispose()

    try:
        asyncio.run(ping())
    except Exception as exc:
        fail(f"DATABASE_URL: {database_problem(exc, settings.database_url)}")
