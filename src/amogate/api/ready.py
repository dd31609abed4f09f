"""GET /health/ready: may a load balancer send traffic here? (`/health` stays the cheap
liveness answer.) Ready means the database answers, the amoCRM token is usable and the delivery
queue is not stuck; otherwise 503 with one reason per failing check in `details`.

amoCRM not answering (as the worker's latest attempts show) is reported in `data.amocrm` but
does not make the gateway unready: it still accepts leads and keeps them until amoCRM is back,
so a load balancer must keep sending them here. A long outage fails the queue check."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from amogate.api import envelope
from amogate.api.deps import app_state, settings_of
from amogate.relay.registration import ready_line
from amogate.storage import accounts, delivery_views, relay
from amogate.storage.db import Database
from amogate.worker import reachability

router = APIRouter(tags=["health"])

DATABASE_TIMEOUT_S = 3.0
READY_AMO_DOWN = "Gateway is ready; amoCRM is not answering, leads are queued"
# amoCRM revokes a refresh token left unused for 3 months.
REFRESH_TOKEN_LIFETIME = timedelta(days=90)


def token_problem(row: accounts.AccountRow | None, now: datetime) -> str | None:
    """Why the stored token cannot be used for amoCRM calls, or None when it can (an expired
    access token is fine while its refresh token can still renew it)."""
    if row is None or not row.has_token:
        return "amoCRM is not connected: open /oauth/authorize"
    if row.state == accounts.NEEDS_REAUTHORIZATION:
        return "amoCRM needs reauthorization: open /oauth/authorize"
    if row.state != accounts.CONNECTED:
        return f"amoCRM connection state is {row.state}"
    expires = row.access_expires_at
    if expires is None or expires > now:
        return None
    if row.token_kind == accounts.LONG_LIVED:
        return f"the long-lived token expired at {expires.isoformat()}"
    if not row.refresh_token:
        return "the access token expired and there is no refresh token"
    last_renewal = row.refreshed_at or row.updated_at
    if now - last_renewal > REFRESH_TOKEN_LIFETIME:
        return "the access token expired and the refresh token is older than 3 months"
    return None


def queue_problem(oldest: datetime | None, now: datetime, max_age_s: float) -> str | None:
    if oldest is None:
        return None
    age = (now - oldest).total_seconds()
    if age <= max_age_s:
        return None
    return f"the oldest undelivered lead is {int(age)} s old (limit {int(max_age_s)} s)"


@router.get("/health/ready", summary="Ready for traffic? (database, token, delivery queue)")
async def ready(request: Request) -> JSONResponse:
    settings = settings_of(request)
    gateway = app_state(request).gateway
    database = gateway.database if gateway is not None else None
    now = datetime.now(UTC)
    problems: dict[str, str] = {}
    checks: dict[str, str] = {}
    row: accounts.AccountRow | None = None
    oldest: datetime | None = None
    reach = reachability.assess([])
    webhooks: str | None = None
    try:
        assert isinstance(database, Database)
        async with asyncio.timeout(DATABASE_TIMEOUT_S), database.read() as conn:
            row = await accounts.get(conn)
            oldest = await delivery_views.oldest_undelivered(conn)
            reach = reachability.assess(await delivery_views.latest_attempts(conn))
            webhooks = ready_line(await relay.list_accounts(conn))
    except Exception as exc:
        problems["database"] = f"the database does not answer ({type(exc).__name__})"
    else:
        checks["database"] = "ok"
        if gateway is None or gateway.default is None:
            problems["amocrm"] = "amoCRM is not configured: set AMO_DOMAIN (or AMO_BASE_URL)"
        elif (reason := token_problem(row, now)) is not None:
            problems["amocrm"] = reason
        else:
            checks["amocrm"] = reach.describe()
        if (reason := queue_problem(oldest, now, settings.ready_max_queue_age)) is not None:
            problems["queue"] = reason
        else:
            checks["queue"] = "ok"
        if webhooks is not None:
            checks["webhooks"] = webhooks
    if problems:
        return envelope.error(503, "Gateway is not ready", problems)
    message = READY_AMO_DOWN if reach.down else "Gateway is ready"
    return envelope.success(message, checks)
