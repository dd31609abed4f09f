"""`amogate worker`: the delivery worker alone (for `amogate serve --no-worker` setups).

Several workers may share one PostgreSQL database; each batch is leased, so no lead is sent
twice. SIGTERM or Ctrl-C stops it after handing unfinished leads back.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal


def run_worker() -> None:
    """Deliver queued leads to amoCRM (no HTTP API)."""
    from amogate.commands.startup import check_database, fail, load_settings
    from amogate.logging import configure_logging

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


async def _serve(settings: object) -> bool:
    from amogate.connection.service import AmoConnection
    from amogate.deliveries.signals import DeliverySignals
    from amogate.info.source import info_cache_for
    from amogate.settings import Settings
    from amogate.storage import migrate
    from amogate.storage.db import Database
    from amogate.worker.worker import DeliveryWorker, deliverer_from, purge_from

    assert isinstance(settings, Settings)
    db = Database(settings.database_url, synchronous=settings.sqlite_synchronous)
    try:
        if db.is_sqlite:
            await migrate.upgrade(db)
        elif not await migrate.is_up_to_date(db):
            return False
        amo = AmoConnection.create(settings, db)
        await amo.start(keeper=True)
        cache = info_cache_for(amo)
        assert cache is not None
        signals = DeliverySignals()
        worker = DeliveryWorker(
            deliverer_from(settings, db, amo, cache, signals),
            signals,
            purge=purge_from(settings, db),
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, stop.set)
        worker.start()
        try:
            await stop.wait()
        finally:
            await worker.stop()
            await amo.stop()
        return True
    finally:
        await db.dispose()
