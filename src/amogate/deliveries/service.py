"""`Deliveries`: looking at the delivery queue and sending deliveries again by hand.

One service for the API (`GET /api/v1/leads/deliveries/{id}`), the admin page (a delivery,
Retry, Retry all failed) and the CLI (`amogate deliveries list|show|retry`): the same view of a
delivery (never a token or key) and the same requeue rule everywhere. A requeued delivery is
due at once and gets a fresh retry period of `max_age`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from amogate.settings import Settings
from amogate.storage import deliveries as store
from amogate.storage.db import Database

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class DeliveryRecord:
    """A delivery with its attempts, oldest first."""

    delivery: store.Delivery
    attempts: list[store.Attempt]

    def view(self) -> dict[str, Any]:
        return delivery_view(self.delivery, self.attempts)


@dataclass
class Deliveries:
    database: Database
    max_age: timedelta
    clock: Clock = utcnow

    @classmethod
    def of(cls, database: Database, settings: Settings) -> Deliveries:
        return cls(database, timedelta(hours=settings.delivery_max_age_hours))

    async def get(
        self, delivery_id: str, *, api_key_id: str | None = None
    ) -> DeliveryRecord | None:
        """One delivery and its attempts; with `api_key_id`, only when that key sent it."""
        async with self.database.read() as conn:
            delivery = await store.get(conn, delivery_id, api_key_id=api_key_id)
            if delivery is None:
                return None
            return DeliveryRecord(delivery, await store.attempts_of(conn, delivery_id))

    async def recent(self, *, status: str | None = None, limit: int = 50) -> list[store.Delivery]:
        """The newest deliveries (in one state, when given)."""
        async with self.database.read() as conn:
            return await store.list_deliveries(conn, status=status, limit=limit)

    async def requeue(self, delivery_id: str) -> bool:
        """Queue a failed or waiting delivery again; False when it is delivered, being sent or
        unknown."""
        now = self.clock()
        async with self.database.transaction() as conn:
            return await store.requeue(conn, delivery_id, now=now, give_up_at=now + self.max_age)

    async def requeue_failed(self) -> int:
        """Queue every failed delivery again; how many."""
        now = self.clock()
        async with self.database.transaction() as conn:
            return await store.requeue_failed(conn, now=now, give_up_at=now + self.max_age)


def delivery_view(delivery: store.Delivery, attempts: list[store.Attempt]) -> dict[str, Any]:
    """A delivery as the API, the CLI and the admin page show it (never a token or key)."""
    waiting = delivery.status in (store.QUEUED, store.RETRYING)
    return {
        "delivery_id": delivery.id,
        "status": delivery.status,
        "step": delivery.step,
        "lead_name": delivery.lead_name,
        "contact_name": delivery.contact_name,
        "created_at": _iso(delivery.created_at),
        "updated_at": _iso(delivery.updated_at),
        "next_attempt_at": _iso(delivery.next_attempt_at) if waiting else None,
        "give_up_at": _iso(delivery.give_up_at),
        "delivered_at": _iso(delivery.delivered_at),
        "personal_data_erased_at": _iso(delivery.erased_at),
        "attempts_count": delivery.attempts,
        "last_error": delivery.last_error,
        "error_details": delivery.error_details,
        "warnings": delivery.warnings,
        "amocrm": {
            "uid": delivery.amo_uid,
            "source_uid": delivery.id,
            "lead_id": delivery.amo_lead_id,
            "contact_id": delivery.amo_contact_id,
            "contact_matched": delivery.contact_matched,
            "note_id": delivery.amo_note_id,
        },
        "attempts": [
            {
                "at": _iso(a.started_at),
                "step": a.step,
                "outcome": a.outcome,
                "http_status": a.http_status,
                "duration_ms": a.duration_ms,
                "detail": a.detail,
            }
            for a in attempts
        ],
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
