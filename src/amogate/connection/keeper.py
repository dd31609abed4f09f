"""The background token keeper: an idle gateway refreshes its tokens well before amoCRM's
3-month refresh-token lifetime runs out (default: any pair older than 7 days), so a quiet
month never disconnects it. Runs inside `amogate serve` and `amogate worker`."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import structlog

from amogate.amocrm.errors import AmoError
from amogate.connection.tokens import TokenManager
from amogate.storage import accounts

log = structlog.get_logger("amogate.keeper")


async def keep_once(manager: TokenManager, max_age: timedelta) -> bool:
    """Refresh when the stored pair is older than `max_age`. True when a refresh happened."""
    row = await manager.status()
    if row is None or row.token_kind != accounts.OAUTH or row.state != accounts.CONNECTED:
        return False
    if not row.refresh_token:
        return False
    # No refresh on record (a pair imported from tokens.json): its age is unknown and may be
    # close to amoCRM's 3 months, so it is due now.
    last = row.refreshed_at
    if last is not None and manager.clock() - last < max_age:
        return False
    before = manager.refresh_count
    fresh = await manager.refresh_now(
        reason="keeper", unless_refreshed_after=last or row.updated_at
    )
    done = manager.refresh_count != before
    if done:
        log.info("oauth.keeper.refreshed", refreshed_at=fresh.refreshed_at)
    return done


async def run_keeper(
    manager: TokenManager, *, max_age: timedelta, interval: timedelta = timedelta(minutes=30)
) -> None:
    """Forever: check every `interval`. Errors are logged and retried at the next tick."""
    while True:
        try:
            await keep_once(manager, max_age)
        except AmoError as exc:
            log.warning("oauth.keeper.failed", error=type(exc).__name__, detail=exc.detail)
        except Exception as exc:  # the keeper must never die
            log.error("oauth.keeper.crashed", error=type(exc).__name__)
        await asyncio.sleep(interval.total_seconds())
