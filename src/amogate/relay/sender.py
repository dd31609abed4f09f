"""Relay deliveries going out: POST each event to its subscriber, signed, and record the result.

`RelaySender.dispatch()` claims due deliveries (leased, storage/relay.py) for subscribers that
have a free slot in this process — at most `concurrency` requests in flight per subscriber, so
one slow or dead receiver never holds back another's events — and starts one task per
delivery. A task POSTs, bounded by `timeout_s`, and records the result in its own short
transaction: a 2xx answer delivers; anything else (no answer, a timeout, another status) is
rescheduled by the lead deliveries' `RetryPolicy` until 72 h after the event, then fails.
Every finished task wakes the worker loop, which claims more.

Redirects are not followed and proxies from the environment are not used: the URL the
operator registered is the only place an event goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import structlog

from amogate.relay import events, signing
from amogate.storage import relay_queue as queue
from amogate.storage.db import Database
from amogate.worker.retry import RetryPolicy

log = structlog.get_logger("amogate.relay")

USER_AGENT = "amogate-webhooks/1"
CLAIM_LIMIT = 200


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SendResult:
    status: int | None  # None: no HTTP answer
    error: str | None  # None: delivered
    seconds: float
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


Observer = Callable[[str, float], None]  # (outcome "delivered"/"failed"/"retry", seconds)


@dataclass
class RelaySender:
    database: Database
    policy: RetryPolicy
    lease: timedelta = timedelta(seconds=60)
    timeout_s: float = 10.0
    concurrency: int = 4
    wake: Callable[[], None] = lambda: None
    observe: Observer | None = None
    transport: httpx.AsyncBaseTransport | None = None
    clock: Callable[[], datetime] = utcnow
    rand: Callable[[], float] = random.random
    owner: str = field(default_factory=lambda: f"relay-{uuid.uuid4().hex[:12]}")
    _in_flight: dict[str, int] = field(default_factory=dict, init=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _claimed: set[str] = field(default_factory=set, init=False)
    _http: httpx.AsyncClient | None = field(default=None, init=False)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def dispatch(self) -> int:
        """Claim what may be sent now and start sending it; how many deliveries started."""
        now = self.clock()
        async with self.database.read() as conn:
            if not await queue.any_due(conn, now):
                return 0
        async with self.database.transaction() as conn:
            full = [s for s, n in self._in_flight.items() if n >= self.concurrency]
            due = await queue.claim_due(
                conn,
                owner=self.owner,
                now=now,
                lease_until=now + self.lease,
                limit=CLAIM_LIMIT,
                skip_subscribers=full,
            )
            extra: list[str] = []
            start: list[queue.Due] = []
            taken = dict(self._in_flight)
            for item in due:
                subscriber = item.delivery.subscriber_id
                if taken.get(subscriber, 0) >= self.concurrency:
                    extra.append(item.delivery.id)
                    continue
                taken[subscriber] = taken.get(subscriber, 0) + 1
                start.append(item)
            if extra:
                # Their subscriber has no free slot: back in the queue, due as they were.
                await queue.release(conn, extra, owner=self.owner, now=now)
        for item in start:
            self._start(item)
        return len(start)

    def _start(self, item: queue.Due) -> None:
        subscriber = item.delivery.subscriber_id
        self._in_flight[subscriber] = self._in_flight.get(subscriber, 0) + 1
        self._claimed.add(item.delivery.id)
        task = asyncio.get_running_loop().create_task(
            self._deliver(item), name=f"amogate-relay-{item.delivery.id}"
        )
        self._tasks.add(task)
        task.add_done_callback(functools.partial(self._finished, item=item))

    def _finished(self, task: asyncio.Task[None], *, item: queue.Due) -> None:
        self._tasks.discard(task)
        subscriber = item.delivery.subscriber_id
        left = self._in_flight.get(subscriber, 1) - 1
        if left > 0:
            self._in_flight[subscriber] = left
        else:
            self._in_flight.pop(subscriber, None)
        self._claimed.discard(item.delivery.id)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "webhook.delivery.crashed",
                delivery_id=item.delivery.id,
                error=type(task.exception()).__name__,
            )
        self.wake()

    async def _deliver(self, item: queue.Due) -> None:
        result = await self.send(item)
        await self.record(item, result)

    async def send(self, item: queue.Due) -> SendResult:
        """One signed POST of the event to the subscriber."""
        body = events.body_of(item.event)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            **signing.signed_headers(item.secret, item.event.id, body, self.clock()),
        }
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await self._client().post(item.url, content=body, headers=headers)
        except (TimeoutError, httpx.TimeoutException):
            return SendResult(None, f"no answer within {self.timeout_s:g} s", _since(started))
        except httpx.HTTPError as exc:
            return SendResult(None, f"could not connect ({type(exc).__name__})", _since(started))
        status = response.status_code
        if 200 <= status <= 299:
            return SendResult(status, None, _since(started))
        return SendResult(status, f"HTTP {status}", _since(started), _retry_after(response.headers))

    async def record(self, item: queue.Due, result: SendResult) -> None:
        delivery = item.delivery
        now = self.clock()
        async with self.database.transaction() as conn:
            if result.ok:
                assert result.status is not None
                await queue.mark_delivered(
                    conn, delivery.id, owner=self.owner, now=now, status=result.status
                )
                outcome = "delivered"
            else:
                decision = self.policy.decide(
                    "transient",
                    attempt=delivery.attempts + 1,
                    now=now,
                    give_up_at=delivery.give_up_at,
                    retry_after=result.retry_after,
                    rand=self.rand,
                )
                error = result.error or "failed"
                if decision.retry_at is None:
                    error = f"gave up after {delivery.attempts + 1} attempts; last: {error}"
                await queue.mark_attempt_failed(
                    conn,
                    delivery.id,
                    owner=self.owner,
                    now=now,
                    retry_at=decision.retry_at,
                    status=result.status,
                    error=error,
                )
                outcome = "failed" if decision.retry_at is None else "retry"
        if self.observe is not None:
            self.observe(outcome, result.seconds)
        level = log.warning if outcome == "failed" else log.info
        level(
            f"webhook.delivery.{outcome}",
            delivery_id=delivery.id,
            event_id=item.event.id,
            subscriber_id=delivery.subscriber_id,
            status=result.status,
            attempt=delivery.attempts + 1,
            reason=result.error,
        )

    async def settle(self) -> None:
        """Wait until every send started so far has been recorded."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Stop sending: cancel what is in flight and hand its deliveries back."""
        tasks = list(self._tasks)
        claimed = list(self._claimed)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if claimed:
            with contextlib.suppress(Exception):
                async with self.database.transaction() as conn:
                    await queue.release(conn, claimed, owner=self.owner, now=self.clock())
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=self.timeout_s + 1,  # asyncio.timeout bounds the attempt; a backstop
                follow_redirects=False,
                trust_env=False,
                transport=self.transport,
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=50),
            )
        return self._http


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after", "").strip()
    if value.isdigit():
        return min(float(value), 3600.0)
    return None


def _since(started: float) -> float:
    return time.perf_counter() - started
