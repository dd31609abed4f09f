"""`amogate check`: is this installation able to work? One line per check, exit 0 only when
every check passes. Configuration (and which .env was read), database, schema, the amoCRM token
and a live call to amoCRM (GET /api/v4/account with a short timeout). A failure says what to
do or what to ask ("is <url> reachable?"), never an exception class."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import typer
from pydantic import ValidationError

from amogate.accounts.config import DEFAULT
from amogate.commands.startup import (
    EnvFileOption,
    config_problem,
    database_location,
    database_problem,
    env_source,
)

if TYPE_CHECKING:
    from amogate.connection.service import AmoConnection

AMO_TIMEOUT = httpx.Timeout(5.0, connect=3.0)
DATABASE_TIMEOUT_S = 10.0
OVERALL_AMO_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"


async def run_checks(
    transport: httpx.AsyncBaseTransport | None = None, env_file: Path | None = None
) -> list[CheckResult]:
    """Every check, in order; a failed prerequisite turns the checks after it into FAILs
    that say why they were skipped. Nothing is created: a SQLite file that does not exist yet
    is reported as such (`amogate serve` creates and migrates it)."""
    from amogate.logging import configure_logging
    from amogate.runtime import connection_for
    from amogate.storage import accounts, migrate
    from amogate.storage.db import Database, sqlite_path

    results: list[CheckResult] = []
    source = env_source(env_file)
    try:
        settings = source.load()
    except ValidationError as exc:
        results.append(CheckResult("config", False, f"{config_problem(exc)} ({source.hint()})"))
        return results
    if not settings.amo_configured:
        missing = f"AMO_DOMAIN (or AMO_BASE_URL) is not set ({source.hint()})"
        results.append(CheckResult("config", False, missing))
    else:
        results.append(
            CheckResult("config", True, f"{source.describe()}; amoCRM at {settings.amo_api_base}")
        )
    # The report goes to stdout; the gateway's own log lines (warnings only) to stderr.
    configure_logging(log_format=settings.log_format, level="WARNING")

    path = sqlite_path(settings.database_url)
    if settings.is_sqlite and path is not None and not path.exists():
        results.append(
            CheckResult("database", True, f"{path} does not exist yet: `amogate serve` creates it")
        )
        results.append(CheckResult("migrations", True, "`amogate serve` creates the schema"))
        skipped = "skipped: no database yet (start `amogate serve` once)"
        results += [CheckResult(n, False, skipped) for n in ("token", "amocrm")]
        return results
    db = Database(settings.database_url)
    try:
        try:
            await asyncio.wait_for(db.ping(), timeout=DATABASE_TIMEOUT_S)
        except Exception as exc:
            problem = database_problem(exc, settings.database_url)
            results.append(CheckResult("database", False, problem))
            skipped = "skipped: the database is not reachable"
            results += [CheckResult(n, False, skipped) for n in ("migrations", "token", "amocrm")]
            return results
        results.append(CheckResult("database", True, database_location(settings.database_url)))

        current = await migrate.current_revision(db)
        head = migrate.head_revision()
        if current == head:
            results.append(CheckResult("migrations", True, f"at {head}"))
        elif settings.is_sqlite:
            # `amogate serve` (and every CLI command) migrates SQLite by itself.
            results.append(
                CheckResult(
                    "migrations",
                    True,
                    f"at {current or 'nothing'}: `amogate serve` migrates it to {head} at start",
                )
            )
            if current is None:
                skipped = "skipped: no schema yet (start `amogate serve` once)"
                results += [CheckResult(n, False, skipped) for n in ("token", "amocrm")]
                return results
        else:
            results.append(
                CheckResult(
                    "migrations",
                    False,
                    f"schema at {current or 'nothing'}, expected {head}: run `amogate db upgrade`",
                )
            )
            skipped = "skipped: the schema is not up to date"
            results += [CheckResult(n, False, skipped) for n in ("token", "amocrm")]
            return results

        names = [DEFAULT] if settings.amo_configured else []
        async with db.read() as conn:
            names += [row.account_key for row in await accounts.added(conn)]
        if not names:
            skipped = "skipped: amoCRM is not configured"
            results += [CheckResult(n, False, skipped) for n in ("token", "amocrm")]
            return results
        for name in names:
            amo = await connection_for(settings, db, name, transport=transport)
            try:
                results += await _check_account(amo, "" if name == DEFAULT else f" {name}")
            finally:
                await amo.stop()
    finally:
        await db.dispose()
    return results


async def _check_account(amo: AmoConnection, suffix: str) -> list[CheckResult]:
    """The token and a live call for one account (`suffix`: its name, empty for default)."""
    from amogate.api.ready import token_problem
    from amogate.connection import advice
    from amogate.storage import accounts

    # What `serve` does at start: install AMO_LONG_LIVED_TOKEN or import tokens.json.
    await amo.start(keeper=False)
    row = await amo.account_state()
    token_trouble = token_problem(row, datetime.now(UTC))
    if token_trouble is not None or row is None:
        return [
            CheckResult("token" + suffix, False, token_trouble or "no token"),
            CheckResult("amocrm" + suffix, False, "skipped: no usable token"),
        ]
    expires = row.access_expires_at
    kind = row.token_kind if row.token_kind else accounts.OAUTH
    results = [
        CheckResult(
            "token" + suffix,
            True,
            f"{kind}, expires {expires.isoformat() if expires else 'never'}",
        )
    ]
    base = await amo.api_base()
    client = amo.build_client(base, max_pause_wait=5.0, timeout=AMO_TIMEOUT)
    try:
        account = await asyncio.wait_for(client.get_account(), OVERALL_AMO_TIMEOUT_S)
    except Exception as exc:
        results.append(CheckResult("amocrm" + suffix, False, advice.api_error(exc, base)))
    else:
        name = account.get("name") or account.get("subdomain") or "account"
        results.append(CheckResult("amocrm" + suffix, True, f"{base} answers ({name})"))
    finally:
        await client.aclose()
    return results


def check(env_file: EnvFileOption = None) -> None:
    """Check configuration, database, schema, amoCRM token and amoCRM reachability."""
    results = asyncio.run(run_checks(env_file=env_file))
    for result in results:
        typer.echo(result.line())
    if not all(r.ok for r in results):
        raise typer.Exit(1)
