"""The delivery worker loop, inside `amogate serve` or alone as `amogate worker`.

It runs `Deliverer.run_once()` while there is due work, and otherwise sleeps until the intake
of the same process wakes it or `poll_seconds` pass (leads stored by other processes, retries
coming due). Several workers, in one process or many sharing a PostgreSQL database, never
deliver the same lead twice: each batch is leased in the database. Between passes it also runs
the retention purge when one is due (see `retention.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import structlog

from amogate.connection.service import AmoConnection
from amogate.contacts.matching import parse_dedup
from amogate.contacts.resolve import CLAIM_SECONDS, ContactResolver
from amogate.deliveries.signals import DeliverySignals
from amogate.leads.fields import FieldLists
from amogate.settings import Settings
from amogate.storage.db import Database
from amogate.worker.deliver import Deliverer
from amogate.worker.retention import RetentionPurge
from amogate.worker.retry import RetryPolicy

log = structlog.get_logger("amogate.worker")

POLL_SECONDS = 1.0
ERROR_PAUSE_SECONDS = 2.0


def policy_from(settings: Settings) -> RetryPolicy:
    base = settings.delivery_retry_base_seconds
    return RetryPolicy(
        base_delay=base,
        max_delay=max(base, settings.delivery_retry_max_seconds),
        max_age=timedelta(hours=settings.delivery_max_age_hours),
    )


def purge_from(settings: Settings, database: Database) -> RetentionPurge:
    return RetentionPurge(
        database,
        retention=timedelta(days=settings.data_retention_days),
        interval_s=settings.purge_interval_seconds,
    )


def deliverer_from(
    settings: Settings,
    database: Database,
    amo: AmoConnection,
    fields: FieldLists,
    signals: DeliverySignals | None,
) -> Deliverer:
    deliverer = Deliverer(
        database,
        amo,
        fields,
        policy=policy_from(settings),
        lease=timedelta(seconds=settings.delivery_lease_seconds),
        signals=signals,
    )
    deliverer.contacts = ContactResolver(
        database,
        settings.phone_default_region,
        parse_dedup(settings.contact_dedup),
        owner=deliverer.owner,
        # A claim on a new person's contact lasts as long as the lease on the lead creating it:
        # when a dead worker's leads are taken over, so are its claims.
        claim_seconds=min(CLAIM_SECONDS, settings.delivery_lease_seconds),
    )
    return deliverer


class DeliveryWorker:
    def __init__(
        self,
        deliverer: Deliverer,
        signals: DeliverySignals,
        *,
        poll_seconds: float = POLL_SECONDS,
        purge: RetentionPurge | None = None,
    ) -> None:
        self.deliverer = deliverer
        self.signals = signals
        self.poll_seconds = poll_seconds
        self.purge = purge
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="amogate-delivery-worker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.deliverer.close()

    async def run(self) -> None:
        log.info("worker.started", owner=self.deliverer.owner)
        while True:
            try:
                claimed = await self.deliverer.run_once()
                if self.purge is not None and self.purge.due():
                    await self.purge.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                # A database hiccup must not end the worker; the leases bring the rows back.
                log.exception("worker.pass.failed")
                await asyncio.sleep(ERROR_PAUSE_SECONDS)
                continue
            if claimed == 0:
                await self.signals.wait_for_work(self.poll_seconds)
