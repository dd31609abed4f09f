"""The relay's Prometheus metrics, registered in the gateway's registry.

Counted as they happen: inbound posts by outcome, send attempts by outcome with latency. Read
from the database at scrape time (with the gateway's other shared numbers): relay deliveries
by state, how many wait, the oldest waiting one's age, and per account whether amoCRM's list
shows our webhook disabled and how often it was re-registered.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncConnection

from amogate.storage import relay as store
from amogate.storage import relay_queue as queue


@dataclass
class RelaySnapshot:
    deliveries: dict[str, int] = field(default_factory=dict)
    oldest_pending_age_s: float = 0.0
    accounts: list[store.RelayAccount] = field(default_factory=list)


class _Snapshot(Collector):
    def __init__(self) -> None:
        self.snapshot: RelaySnapshot | None = None

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot
        if s is None:
            return
        by_state = GaugeMetricFamily(
            "amogate_webhook_deliveries",
            "Events to subscribers in the relay table by state",
            labels=["state"],
        )
        for state in sorted({*queue.STATUSES, *s.deliveries}):
            by_state.add_metric([state], s.deliveries.get(state, 0))
        yield by_state
        yield GaugeMetricFamily(
            "amogate_webhook_queue_depth",
            "Events not yet delivered to a subscriber (queued, sending or retrying)",
            value=sum(s.deliveries.get(state, 0) for state in queue.PENDING),
        )
        yield GaugeMetricFamily(
            "amogate_webhook_oldest_undelivered_age_seconds",
            "Age of the oldest event not yet delivered to a subscriber (0 when none)",
            value=s.oldest_pending_age_s,
        )
        disabled = GaugeMetricFamily(
            "amogate_amocrm_webhook_disabled",
            "1 when amoCRM's webhook list showed amogate's webhook disabled at the last check",
            labels=["account"],
        )
        reenabled = CounterMetricFamily(
            "amogate_amocrm_webhook_reenabled",
            "Times amogate re-registered a webhook amoCRM had disabled",
            labels=["account"],
        )
        for account in s.accounts:
            disabled.add_metric([account.account_key], 1 if account.amo_disabled else 0)
            reenabled.add_metric([account.account_key], account.reenabled_count)
        yield disabled
        yield reenabled


class RelayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.inbound = Counter(
            "amogate_webhook_inbound_posts",
            "amoCRM webhook posts received, by outcome",
            ["outcome"],
            registry=registry,
        )
        self.sends = Counter(
            "amogate_webhook_sends",
            "Attempts to send an event to a subscriber, by outcome (delivered, retry, failed)",
            ["outcome"],
            registry=registry,
        )
        self.send_duration = Histogram(
            "amogate_webhook_send_duration_seconds",
            "Time until a subscriber answered (or the attempt ended)",
            registry=registry,
        )
        self._snapshot = _Snapshot()
        registry.register(self._snapshot)

    def observe_send(self, outcome: str, seconds: float) -> None:
        self.sends.labels(outcome).inc()
        self.send_duration.observe(seconds)

    async def read(self, conn: AsyncConnection) -> None:
        """Read the shared numbers for the next render (inside the gateway's scrape read)."""
        snapshot = RelaySnapshot(
            deliveries=await queue.counts(conn), accounts=await store.list_accounts(conn)
        )
        oldest = await queue.oldest_pending(conn)
        if oldest is not None:
            snapshot.oldest_pending_age_s = max(0.0, (datetime.now(UTC) - oldest).total_seconds())
        self._snapshot.snapshot = snapshot

    def clear(self) -> None:
        self._snapshot.snapshot = None
