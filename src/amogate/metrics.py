"""Prometheus metrics, one `CollectorRegistry` per app (several apps may share a process).

Counted as they happen: HTTP requests (by route template, method and status, with latency) and
amoCRM calls (by endpoint template and status, with latency). Read from the database at scrape
time, so every instance reports the shared truth: deliveries by state, queue depth, age of the
oldest undelivered lead, the shared budget's 429/403 totals, the token's expiry and the
connection state.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from amogate.relay.metrics import RelayMetrics
from amogate.storage import accounts, delivery_views
from amogate.storage import budget as budget_store
from amogate.storage import deliveries as deliveries_store

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DELIVERY_STATES = deliveries_store.STATUSES
PENDING_STATES = delivery_views.UNDELIVERED
CONNECTION_STATES = (accounts.CONNECTED, accounts.NEEDS_REAUTHORIZATION, accounts.NOT_AUTHORIZED)
UNMATCHED_ROUTE = "<unmatched>"
# Probes and scrapes every few seconds would drown the access log: those go at DEBUG.
QUIET_ROUTES = frozenset({"/health", "/health/ready", "/metrics"})

access_log = structlog.get_logger("amogate.access")


# --- the snapshot collector --------------------------------------------------------------------


@dataclass
class AccountSnapshot:
    """One amoCRM account's part of the snapshot (the `account` label)."""

    queue_depth: int = 0
    total_429: int = 0
    total_403: int = 0
    token_expires_at: float | None = None
    connection_state: str | None = None


@dataclass
class Snapshot:
    database_up: bool = False
    deliveries: dict[str, int] = field(default_factory=dict)
    oldest_pending_age_s: float = 0.0
    accounts: dict[str, AccountSnapshot] = field(default_factory=dict)


class _SnapshotCollector(Collector):
    def __init__(self) -> None:
        self.snapshot = Snapshot()

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot
        yield GaugeMetricFamily(
            "amogate_database_up",
            "1 when the database answered the last scrape",
            value=1 if s.database_up else 0,
        )
        if not s.database_up:
            return
        by_state = GaugeMetricFamily(
            "amogate_deliveries", "Leads in the delivery table by state", labels=["state"]
        )
        for state in sorted({*DELIVERY_STATES, *s.deliveries}):
            by_state.add_metric([state], s.deliveries.get(state, 0))
        yield by_state
        yield GaugeMetricFamily(
            "amogate_queue_depth",
            "Leads not yet delivered (queued, sending or retrying)",
            value=sum(s.deliveries.get(state, 0) for state in PENDING_STATES),
        )
        yield GaugeMetricFamily(
            "amogate_oldest_undelivered_lead_age_seconds",
            "Age of the oldest lead not yet delivered (0 when none)",
            value=s.oldest_pending_age_s,
        )
        depth = GaugeMetricFamily(
            "amogate_account_queue_depth",
            "Leads not yet delivered, per amoCRM account",
            labels=["account"],
        )
        limited = CounterMetricFamily(
            "amogate_amocrm_rate_limited",
            "429 answers from amoCRM (all instances)",
            labels=["account"],
        )
        blocked = CounterMetricFamily(
            "amogate_amocrm_blocked", "403 answers from amoCRM (all instances)", labels=["account"]
        )
        expiry = GaugeMetricFamily(
            "amogate_amocrm_token_expiry_timestamp_seconds",
            "When the amoCRM access token expires (unix time)",
            labels=["account"],
        )
        states = GaugeMetricFamily(
            "amogate_amocrm_connection_state",
            "1 for the amoCRM connection's current state",
            labels=["account", "state"],
        )
        for name, account in sorted(s.accounts.items()):
            depth.add_metric([name], account.queue_depth)
            limited.add_metric([name], account.total_429)
            blocked.add_metric([name], account.total_403)
            if account.token_expires_at is not None:
                expiry.add_metric([name], account.token_expires_at)
            current = account.connection_state or accounts.NOT_AUTHORIZED
            for state in sorted({*CONNECTION_STATES, current}):
                states.add_metric([name, state], 1 if state == current else 0)
        yield from (depth, limited, blocked, expiry, states)


class GatewayMetrics:
    """Everything /metrics shows, in its own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "amogate_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "amogate_http_request_duration_seconds",
            "HTTP request latency by route template and method",
            ["route", "method"],
            registry=self.registry,
        )
        self.amo_calls = Counter(
            "amogate_amocrm_requests",
            "Calls to amoCRM by account, endpoint template and status ('error': no answer)",
            ["account", "endpoint", "status"],
            registry=self.registry,
        )
        self.amo_duration = Histogram(
            "amogate_amocrm_request_duration_seconds",
            "amoCRM call latency by account and endpoint template",
            ["account", "endpoint"],
            registry=self.registry,
        )
        self._snapshot = _SnapshotCollector()
        self.registry.register(self._snapshot)
        self.relay = RelayMetrics(self.registry)
        self._snapshot_at = -math.inf  # monotonic time of the last database read
        self._snapshot_lock = asyncio.Lock()
        self.snapshot_reads = 0  # database reads made for scrapes (tests, diagnostics)

    def observe_http(self, route: str, method: str, status: int, seconds: float) -> None:
        self.http_requests.labels(route, method, str(status)).inc()
        self.http_duration.labels(route, method).observe(seconds)

    def observe_amo_call(
        self, account: str, endpoint: str, status: int | None, seconds: float
    ) -> None:
        """The `AmoClient.on_call` hook, with the account the call was made for."""
        self.amo_calls.labels(account, endpoint, "error" if status is None else str(status)).inc()
        self.amo_duration.labels(account, endpoint).observe(seconds)

    async def refresh(
        self,
        database: object,
        account_keys: Iterable[str] = (accounts.DEFAULT_ACCOUNT,),
        *,
        max_age: float = 0.0,
    ) -> None:
        """Read the shared state for the next render (a few indexed queries), unless the last
        read is younger than `max_age` seconds. Concurrent scrapes share one read."""
        async with self._snapshot_lock:
            if time.monotonic() - self._snapshot_at < max_age:
                return
            await self._read_snapshot(database, list(account_keys))
            self._snapshot_at = time.monotonic()

    async def _read_snapshot(self, database: object, account_keys: list[str]) -> None:
        from amogate.storage.db import Database

        self.snapshot_reads += 1
        snapshot = Snapshot()
        if isinstance(database, Database):
            try:
                async with database.read() as conn:
                    snapshot.deliveries = await delivery_views.counts(conn)
                    oldest = await delivery_views.oldest_undelivered(conn)
                    per_account = await deliveries_store.count_by_account(conn)
                    for key in account_keys:
                        budget = await budget_store.read(conn, key)
                        account = await accounts.get(conn, key)
                        snapshot.accounts[key] = AccountSnapshot(
                            queue_depth=sum(
                                per_account.get(key, {}).get(state, 0) for state in PENDING_STATES
                            ),
                            total_429=int(budget.total_429) if budget else 0,
                            total_403=int(budget.total_403) if budget else 0,
                            token_expires_at=account.access_expires_at.timestamp()
                            if account is not None and account.access_expires_at is not None
                            else None,
                            connection_state=account.state if account is not None else None,
                        )
                    await self.relay.read(conn)
            except Exception:
                self.relay.clear()
                snapshot.database_up = False
            else:
                snapshot.database_up = True
                if oldest is not None:
                    snapshot.oldest_pending_age_s = max(
                        0.0, (datetime.now(UTC) - oldest).total_seconds()
                    )
        self._snapshot.snapshot = snapshot

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _route_patterns(app: object) -> list[tuple[re.Pattern[str], str]]:
    """Path templates with their regexes, from the app's OpenAPI paths (the public list of
    routes); built once per app."""
    cached = getattr(getattr(app, "state", None), "metrics_route_patterns", None)
    if isinstance(cached, list):
        return cached
    patterns: list[tuple[re.Pattern[str], str]] = []
    openapi = getattr(app, "openapi", None)
    if callable(openapi):
        for template in openapi().get("paths", {}):
            regex, _, _ = compile_path(template)
            patterns.append((regex, template))
    state = getattr(app, "state", None)
    if state is not None:
        state.metrics_route_patterns = patterns
    return patterns


def _template_for(scope: Scope) -> str:
    """The matched route's path template; for requests no route handled (CORS preflights,
    405s) the documented route whose template matches the path, else a fixed label."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    raw = str(scope.get("path", ""))
    try:
        patterns = _route_patterns(scope.get("app"))
    except Exception:  # the label is a nicety; never fail a request for it
        return UNMATCHED_ROUTE
    for regex, template in patterns:
        if regex.match(raw):
            return template
    return UNMATCHED_ROUTE


class MetricsMiddleware:
    """Pure ASGI: counts each HTTP request by route template (never the raw path, which
    would let callers create unbounded label values), method and status, with its latency,
    and writes one access log line per request carrying its request id."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = _template_for(scope)
            method = str(scope.get("method", ""))
            seconds = time.perf_counter() - started
            self.metrics.observe_http(route, method, status, seconds)
            # The access line: the route template (no query string, no ids), never headers.
            level = logging.DEBUG if route in QUIET_ROUTES else logging.INFO
            access_log.log(
                level,
                "http.request",
                method=method,
                route=route,
                status=status,
                duration_ms=round(seconds * 1000, 1),
                request_id=scope.get("state", {}).get("request_id"),
            )
