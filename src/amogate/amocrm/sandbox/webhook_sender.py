"""Sending amoCRM-format webhooks to subscribed destinations, in the background.

Routes call `SandboxState.announce(code, event)` while they answer; it hands the event to
`WebhookSender.enqueue` for every enabled webhook subscribed to `code`. Nothing is sent before
the API answer: the events of one request wait in a per-webhook buffer that is flushed on the
next turn of the event loop into one POST per webhook (at most `MAX_ITEMS_PER_POST` items;
several entities and actions may share a POST, as in amoCRM). The body is
`application/x-www-form-urlencoded`, written by `amogate.amocrm.webhook_format.encode_webhook`.

Each POST is a `Delivery` tried in its own task per `WebhookPolicy` (timeout, retries,
disable rule). Every attempt is recorded and shown by `GET /_sandbox/webhooks/deliveries`:
when it was sent (sandbox clock), the status (None = no HTTP answer), the latency until the
answer's headers (the body is never read, so a hostile destination cannot fill memory), the
outcome (`ok`, `rejected` = non-2xx, `timeout`, `unreachable`), and the amoCRM-scale delay
before the next attempt (None = no more attempts). A disabled or deleted webhook gets nothing
more: events for it are dropped (counted in stats) and its pending retries stop. Redirects are
not followed and proxies from the environment are not used.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from amogate.amocrm.sandbox.clock import Clock
from amogate.amocrm.sandbox.entities import Webhook
from amogate.amocrm.sandbox.webhook_policy import FailureWindow, WebhookPolicy
from amogate.amocrm.webhook_format import WebhookEvent, encode_webhook

JSON = dict[str, Any]
MAX_ITEMS_PER_POST = 100
MAX_ATTEMPTS_KEPT = 20_000
HEADERS = {
    "Content-Type": "application/x-www-form-urlencoded",
    "User-Agent": "amoCRM-Webhooks/3.0",  # assumption: amoCRM's exact agent is not documented
}


@dataclass
class Delivery:
    id: int
    webhook_id: int
    destination: str
    events: list[JSON]
    body: bytes
    attempts: int = 0
    state: str = "pending"  # pending | delivered | failed | dropped


@dataclass
class AttemptResult:
    status: int | None
    outcome: str
    latency_ms: float
    error: str | None = None


class WebhookSender:
    def __init__(
        self,
        clock: Clock,
        policy: WebhookPolicy,
        lookup: Callable[[int], Webhook | None],
        account: JSON,
    ) -> None:
        self.clock = clock
        self.policy = policy
        self.lookup = lookup
        self.account = account
        self.attempts: list[JSON] = []
        self.deliveries: dict[int, Delivery] = {}
        self.dropped = 0
        self.disabled = 0
        self._seq = itertools.count(1)
        self._ids = itertools.count(1)
        self._pending: dict[int, list[tuple[str, WebhookEvent]]] = {}
        self._flush_scheduled = False
        self._failures: dict[int, FailureWindow] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    def enqueue(self, webhook: Webhook, code: str, event: WebhookEvent) -> None:
        """Queue `event` for `webhook`; it leaves after the current request is answered."""
        if webhook.disabled:
            self.dropped += 1
            return
        self._pending.setdefault(webhook.id, []).append((code, event))
        if not self._flush_scheduled:
            asyncio.get_running_loop().call_soon(self._flush)
            self._flush_scheduled = True

    def forget_failures(self, webhook_id: int) -> None:
        self._failures.pop(webhook_id, None)

    def clear(self) -> None:
        """Stop everything in flight and forget every delivery (sandbox reset)."""
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        self._pending.clear()
        self._failures.clear()
        self.attempts.clear()
        self.deliveries.clear()
        self.dropped = 0
        self.disabled = 0

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        self.clear()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def since(self, seq: int) -> list[JSON]:
        return [a for a in self.attempts if a["seq"] > seq]

    def stats(self) -> JSON:
        states = [d.state for d in self.deliveries.values()]
        return {
            "posts": len(states),
            "attempts": len(self.attempts),
            "delivered": states.count("delivered"),
            "failed": states.count("failed"),
            "pending": states.count("pending"),
            "dropped_events": self.dropped,
            "webhooks_disabled": self.disabled,
        }

    def _flush(self) -> None:
        self._flush_scheduled = False
        pending, self._pending = self._pending, {}
        loop = asyncio.get_running_loop()
        for webhook_id, queued in pending.items():
            webhook = self.lookup(webhook_id)
            if webhook is None or webhook.disabled:
                self.dropped += len(queued)
                continue
            for start in range(0, len(queued), MAX_ITEMS_PER_POST):
                chunk = queued[start : start + MAX_ITEMS_PER_POST]
                delivery = Delivery(
                    id=next(self._ids),
                    webhook_id=webhook.id,
                    destination=webhook.destination,
                    events=[_summary(code, event) for code, event in chunk],
                    body=encode_webhook([event for _, event in chunk], self.account),
                )
                self.deliveries[delivery.id] = delivery
                task = loop.create_task(self._deliver(delivery))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _deliver(self, delivery: Delivery) -> None:
        while True:
            webhook = self.lookup(delivery.webhook_id)
            if webhook is None or webhook.disabled or webhook.destination != delivery.destination:
                delivery.state = "dropped"
                self.dropped += len(delivery.events)
                return
            delivery.attempts += 1
            sent_at = self.clock()
            result = await self._post(delivery)
            delay = None
            if result.outcome != "ok":
                if self._failed(webhook, sent_at) and not webhook.disabled:
                    webhook.disabled = True
                    self.disabled += 1
                if not webhook.disabled:
                    delay = self.policy.next_delay_s(delivery.attempts, result.status)
            self._record(delivery, webhook, sent_at, result, delay)
            if result.outcome == "ok":
                delivery.state = "delivered"
                return
            if delay is None:
                delivery.state = "failed"
                return
            await asyncio.sleep(delay * self.policy.retry_factor)

    def _failed(self, webhook: Webhook, at: float) -> bool:
        window = self._failures.setdefault(webhook.id, FailureWindow())
        return window.add(at, self.policy)

    async def _post(self, delivery: Delivery) -> AttemptResult:
        started = time.perf_counter()
        timeout = self.policy.timeout_s
        try:
            async with asyncio.timeout(timeout):
                client = self._http()
                request = client.build_request(
                    "POST", delivery.destination, content=delivery.body, headers=HEADERS
                )
                response = await client.send(request, stream=True)
                await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            return AttemptResult(None, "timeout", _since(started))
        except httpx.HTTPError as exc:
            return AttemptResult(None, "unreachable", _since(started), type(exc).__name__)
        status = response.status_code
        outcome = "ok" if 200 <= status <= 299 else "rejected"
        return AttemptResult(status, outcome, _since(started))

    def _http(self) -> httpx.AsyncClient:
        """One client per event loop (a client cannot move between loops)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client = httpx.AsyncClient(
                # asyncio.timeout above bounds the whole attempt; this only backs it up.
                timeout=self.policy.timeout_s + 1,
                follow_redirects=False,
                trust_env=False,
            )
            self._client_loop = loop
        return self._client

    def _record(
        self,
        delivery: Delivery,
        webhook: Webhook,
        sent_at: float,
        result: AttemptResult,
        delay: float | None,
    ) -> None:
        self.attempts.append(
            {
                "seq": next(self._seq),
                "delivery_id": delivery.id,
                "attempt": delivery.attempts,
                "webhook_id": delivery.webhook_id,
                "destination": delivery.destination,
                "sent_at": sent_at,
                "status": result.status,
                "outcome": result.outcome,
                "latency_ms": round(result.latency_ms, 3),
                "error": result.error,
                "next_attempt_in_s": delay,
                "webhook_disabled": webhook.disabled,
                "events": delivery.events,
                "body": delivery.body.decode("ascii"),
            }
        )
        if len(self.attempts) > MAX_ATTEMPTS_KEPT:
            del self.attempts[: len(self.attempts) - MAX_ATTEMPTS_KEPT]


def _summary(code: str, event: WebhookEvent) -> JSON:
    """What a delivery carried, for the control API: the code and the entity's id."""
    inner = event.data.get("note")
    subject = inner if isinstance(inner, dict) else event.data
    return {
        "code": code,
        "entity": event.entity,
        "action": event.action,
        "id": subject.get("id"),
    }


def _since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
