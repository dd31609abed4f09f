"""`amogate check`: is this installation able to work? One line per check, exit 0 only when
every check passes. Configuration, database, schema, the amoCRM token and a live call to
amoCRM (GET /api/v4/account with a short timeout)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import typer
from pydantic import ValidationError

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


def _reason(exc: BaseException) -> str:
    """A short, secret-free reason: the exception's type, plus the gateway's own messages."""
    from amogate.amocrm.errors import AmoError

    if isinstance(exc, AmoError):
        return f"{type(exc).__name__}: {exc.detail}"[:200]
    return type(exc).__name__


async def run_checks(transport: httpx.AsyncBaseTransport | None = None) -> list[CheckResult]:
    """Every check, in order; a failed prerequisite turns the checks after it into FAILs
    that say why they were skipped."""
    from amogate.amocrm.auth import BearerAuth
    from amogate.amocrm.client import AmoClient
    from amogate.api.ready import token_problem
    from amogate.connection.service import AmoConnection
    from amogate.logging import configure_logging
    from amogate.settings import Settings
    from amogate.storage import accounts, migrate
    from amogate.storage.db import Database

    results: list[CheckResult] = []
    try:
        settings = Settings()
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        variable = ".".join(str(p) for p in first["loc"]).upper() or "configuration"
        message = str(first["msg"]).removeprefix("Value error, ")
        results.append(CheckResult("config", False, f"{variable}: {message}"))
        return results
    if not settings.amo_configured:
        results.append(CheckResult("config", False, "AMO_DOMAIN (or AMO_BASE_URL) is not set"))
    else:
        results.append(CheckResult("config", True, f"amoCRM at {settings.amo_api_base}"))
    # The report goes to stdout; the gateway's own log lines (warnings only) to stderr.
    configure_logging(log_format=settings.log_format, level="WARNING")

    db = Database(settings.database_url)
    try:
        try:
            await asyncio.wait_for(db.ping(), timeout=DATABASE_TIMEOUT_S)
        except Exception as exc:
            results.append(CheckResult("database", False, f"cannot reach it ({_reason(exc)})"))
            skipped = "skipped: the database is not reachable"
            results += [CheckResult(n, False, skipped) for n in ("migrations", "token", "amocrm")]
            return results
        results.append(CheckResult("database", True, db.engine.url.get_backend_name()))

        current = await migrate.current_revision(db)
        head = migrate.head_revision()
        if current != head:
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
        results.append(CheckResult("migrations", True, f"at {head}"))

        if not settings.amo_configured:
            skipped = "skipped: amoCRM is not configured"
            results += [CheckResult(n, False, skipped) for n in ("token", "amocrm")]
            return results
        amo = AmoConnection.create(settings, db, transport=transport)
        try:
            # What `serve` does at start: install AMO_LONG_LIVED_TOKEN or import tokens.json.
            await amo.start(keeper=False)
            async with db.read() as conn:
                row = await accounts.get(conn, amo.tokens.account_key)
            problem = token_problem(row, datetime.now(UTC))
            if problem is not None or row is None:
                results.append(CheckResult("token", False, problem or "no token"))
                results.append(CheckResult("amocrm", False, "skipped: no usable token"))
                return results
            expires = row.access_expires_at
            results.append(
                CheckResult(
                    "token",
                    True,
                    f"{row.token_kind}, expires {expires.isoformat() if expires else 'never'}",
                )
            )
            base = await amo.api_base()
            client = AmoClient(
                base,
                auth=BearerAuth(amo.tokens),
                limiter=amo.limiter.with_max_wait(5.0),
                transport=transport,
                timeout=AMO_TIMEOUT,
            )
            try:
                account = await asyncio.wait_for(client.get_account(), OVERALL_AMO_TIMEOUT_S)
            except Exception as exc:
                results.append(CheckResult("amocrm", False, f"GET account: {_reason(exc)}"))
            else:
                name = account.get("name") or account.get("subdomain") or "account"
                results.append(CheckResult("amocrm", True, f"reachable ({name})"))
            finally:
                await client.aclose()
        finally:
            await amo.stop()
    finally:
        await db.dispose()
    return results


def check() -> None:
    """Check configuration, database, schema, amoCRM token and amoCRM reachability."""
    results = asyncio.run(run_checks())
    for result in results:
        typer.echo(result.line())
    if not all(r.ok for r in results):
        raise typer.Exit(1)
