"""`Recorder`: how a pass of the worker ends for each delivery, written to the database.

Every attempt is recorded (time, outcome, status, amoCRM's answer); a delivery then ends
delivered, failed, or scheduled again by the `RetryPolicy`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from amogate.failures import Failure
from amogate.storage import deliveries as store
from amogate.storage import relay
from amogate.storage.db import Database
from amogate.worker.retry import RetryPolicy

log = structlog.get_logger("amogate.worker")

Clock = Callable[[], datetime]
# When a note call started, how long it took, and how it failed (None: it did not).
NoteAttempt = tuple[datetime, int, Failure | None]


@dataclass
class Recorder:
    database: Database
    owner: str
    clock: Clock
    policy: RetryPolicy
    rand: Callable[[], float]

    async def delivered(
        self,
        delivery: store.Delivery,
        *,
        note_id: int | None,
        note_error: str | None = None,
        attempt: NoteAttempt | None = None,
        lead_id: int | None = None,
    ) -> None:
        """`lead_id`: the amoCRM lead created in this pass (the claimed row predates it)."""
        async with self.database.transaction() as conn:
            if attempt is not None:
                started, ms, failure = attempt
                await store.record_attempt(
                    conn,
                    delivery.id,
                    step="note",
                    started_at=started,
                    duration_ms=ms,
                    outcome="ok" if failure is None else failure.outcome,
                    http_status=200 if failure is None else failure.http_status,
                    detail=note_error if failure is None else failure.detail,
                )
            await store.mark_delivered(
                conn,
                delivery.id,
                owner=self.owner,
                now=self.clock(),
                note_id=note_id,
                note_error=note_error,
            )
        log.info(
            "delivery.delivered",
            delivery_id=delivery.id,
            request_id=delivery.request_id,
            lead_id=lead_id or delivery.amo_lead_id,
        )

    async def failed(
        self,
        delivery: store.Delivery,
        step: str,
        error: str,
        details: dict[str, Any],
        *,
        started: datetime | None = None,
        ms: int = 0,
        failure: Failure | None = None,
    ) -> None:
        async with self.database.transaction() as conn:
            await store.record_attempt(
                conn,
                delivery.id,
                step=step,
                started_at=started or self.clock(),
                duration_ms=ms,
                outcome="permanent",
                http_status=None if failure is None else failure.http_status,
                detail=error if failure is None else failure.detail,
            )
            await store.mark_failed(
                conn, delivery.id, owner=self.owner, now=self.clock(), error=error, details=details
            )
            await relay.delivery_failed(conn, delivery.id, error, self.clock())
        # ERROR: it lands in storage/error.log, where the original gateway's users look.
        log.error(
            "delivery.failed",
            delivery_id=delivery.id,
            request_id=delivery.request_id,
            step=step,
            reason=error,
            status=None if failure is None else failure.http_status,
            fields=sorted(details.get("fields") or {}),
        )

    async def reschedule(
        self,
        batch: Sequence[store.Delivery],
        failure: Failure,
        step: str,
        started: datetime | None = None,
        ms: int = 0,
    ) -> None:
        now = self.clock()
        async with self.database.transaction() as conn:
            for delivery in batch:
                decision = self.policy.decide(
                    failure.outcome,
                    attempt=delivery.attempts + 1,
                    now=now,
                    give_up_at=delivery.give_up_at,
                    retry_after=failure.retry_after,
                    blocked_for=failure.blocked_for,
                    rand=self.rand,
                )
                await store.record_attempt(
                    conn,
                    delivery.id,
                    step=step,
                    started_at=started or now,
                    duration_ms=ms,
                    outcome=failure.outcome,
                    http_status=failure.http_status,
                    detail=failure.detail,
                )
                log.warning(
                    "delivery.attempt.failed",
                    delivery_id=delivery.id,
                    request_id=delivery.request_id,
                    step=step,
                    outcome=failure.outcome,
                    status=failure.http_status,
                    reason=failure.message,
                    retry_at=decision.retry_at,
                )
                if decision.retry_at is None:
                    reason = f"{decision.reason}; last error: {failure.message}"
                    await store.mark_failed(
                        conn, delivery.id, owner=self.owner, now=now, error=reason, details=None
                    )
                    await relay.delivery_failed(conn, delivery.id, reason, now)
                    log.error(
                        "delivery.failed",
                        delivery_id=delivery.id,
                        request_id=delivery.request_id,
                        step=step,
                        reason=reason,
                        status=failure.http_status,
                    )
                else:
                    await store.schedule_retry(
                        conn,
                        delivery.id,
                        owner=self.owner,
                        now=now,
                        at=decision.retry_at,
                        error=failure.message,
                        count_attempt=decision.count_attempt,
                        # Only a form (or note) that may have reached amoCRM needs reconciling.
                        outcome_unknown=failure.maybe_applied or step == "reconcile",
                    )
        log.info(
            "delivery.retry.scheduled",
            count=len(batch),
            outcome=failure.outcome,
            status=failure.http_status,
        )
