"""`amogate worker`: the delivery worker alone (for `amogate serve --no-worker` setups).

Several workers may share one PostgreSQL database; each batch is leased, so no lead is sent
twice. SIGTERM or Ctrl-C stops it after handing unfinished leads back.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

from amogate.commands.startup import check_database, fail, load_settings
from amogate.logging import configure_logging
from amogate.runtime import Gateway
from amogate.settings import Settings
from amogate.storage.schema import SchemaOutdated


def run_worker() -> None:
    """Deliver queued leads to amoCRM and events to webhook subscribers (no HTTP API)."""
    settings = load_settings()
    configure_logging(
        log_format=settings.log_format,
        level=settings.log_level,
        error_log_path=settings.error_log_path if settings.log_errors else None,
        error_log_max_bytes=settings.error_log_max_bytes,
    )
    if not settings.amo_configured:
        fail("amoCRM is not configured: set AMO_DOMAIN (or AMO_BASE_URL)")
    check_database(settings)
    if not asyncio.run(_serve(settings)):
        fail("the database schema is not up to date: run `amogate db upgrade`")


async def _serve(settings: Settings) -> bool:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    try:
        # One lead worker per account and the relay worker (see amogate.runtime), until
        # SIGTERM / Ctrl-C.
        async with Gateway.start(settings, require_current_schema=True):
            await stop.wait()
    except SchemaOutdated:
        return False
    return True
