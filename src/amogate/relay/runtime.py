"""What `amogate serve` and `amogate worker` run for the relay: the wake-up signal the inbound
route uses and, unless disabled, the relay worker with its periodic check of amoCRM."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import httpx

from amogate.deliveries.signals import DeliverySignals
from amogate.relay.metrics import RelayMetrics
from amogate.relay.sender import RelaySender
from amogate.relay.worker import Periodic, RelayWorker
from amogate.settings import Settings
from amogate.storage.db import Database
from amogate.worker.retry import RetryPolicy


def policy_from(settings: Settings) -> RetryPolicy:
    base = settings.webhook_retry_base_seconds
    return RetryPolicy(
        base_delay=base,
        max_delay=max(base, settings.webhook_retry_max_seconds),
        max_age=keep_trying(settings),
    )


def keep_trying(settings: Settings) -> timedelta:
    return timedelta(hours=settings.webhook_max_age_hours)


@dataclass
class Relay:
    settings: Settings
    signals: DeliverySignals
    metrics: RelayMetrics | None
    worker: RelayWorker | None = None

    @property
    def keep_trying(self) -> timedelta:
        return keep_trying(self.settings)

    def wake(self) -> None:
        self.signals.wake()

    async def stop(self) -> None:
        if self.worker is not None:
            await self.worker.stop()
            self.worker = None


def start_relay(
    settings: Settings,
    database: Database,
    *,
    metrics: RelayMetrics | None,
    run_worker: bool,
    periodic: list[Periodic] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Relay:
    signals = DeliverySignals()
    relay = Relay(settings, signals, metrics)
    if run_worker:
        sender = RelaySender(
            database,
            policy_from(settings),
            lease=timedelta(
                seconds=max(settings.delivery_lease_seconds, 2 * settings.webhook_timeout_seconds)
            ),
            timeout_s=settings.webhook_timeout_seconds,
            concurrency=settings.webhook_concurrency,
            wake=signals.wake,
            observe=None if metrics is None else metrics.observe_send,
            transport=transport,
        )
        relay.worker = RelayWorker(sender, signals, periodic=periodic)
        relay.worker.start()
    return relay
