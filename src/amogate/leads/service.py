"""The lead intake: store durably, wake the worker, answer.

`accept()` takes plain values (the parsed lead, the body as received, the API key's id, the
idempotency key) and stores the lead and its delivery row in ONE transaction before anything is
sent to amoCRM; from then on the lead survives amoCRM outages and gateway restarts. It then
waits up to LEAD_SYNC_TIMEOUT for the worker to deliver it and returns an `IntakeAnswer`:
delivered, refused (amoCRM refused the lead as a whole) or queued, which the route renders
(200, 422, 202). Either success lists in `data.warnings` what was not taken as sent (see
`amogate.leads.reading`): when the request names fields by name or label and the account's
lists are at hand, unknown ones are listed too. With an idempotency key, the same request
repeated gets the first answer again (`replayed`) and a different request with the same key is
a `Conflict`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from amogate.deliveries.signals import DeliverySignals
from amogate.errors import Conflict, GatewayError, ValidationFailed
from amogate.leads import mapping
from amogate.leads.fields import FieldLists, account_fields
from amogate.leads.schemas import LeadRequest, Remark, warnings_of
from amogate.settings import Settings
from amogate.storage import deliveries as store
from amogate.storage import idempotency
from amogate.storage.db import Database

log = structlog.get_logger("amogate.leads")

IDEMPOTENCY_TTL = timedelta(hours=24)
MAX_IDEMPOTENCY_KEY = 255
# How long the intake waits for the field lists when a request names fields by name or label;
# past it, the lead is stored anyway and the worker resolves the names.
FIELDS_WAIT_SECONDS = 2.0
# Waiting requests re-read their delivery at least this often (workers in other processes).
POLL_SECONDS = 0.25

Outcome = Literal["delivered", "queued", "refused"]
# The idempotency row keeps each answer's status as the original gateway gave it.
_STORED_STATUS: dict[Outcome, int] = {"delivered": 200, "queued": 202, "refused": 422}


def body_hash(data: Any) -> str:
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Submission:
    """One lead as the caller sent it, in plain values."""

    lead: LeadRequest
    received: Any  # the body as received (decoded JSON), shown beside the payload to operators
    api_key_id: str
    idempotency_key: str | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class IntakeAnswer:
    """How the intake answers: `data` is the answer's data (delivered, queued) or amoCRM's
    reasons per field (refused); `replayed` marks the first answer to an idempotency key."""

    outcome: Outcome
    data: dict[str, Any]
    replayed: bool = False

    def stored(self) -> tuple[int, dict[str, Any]]:
        """The answer as its idempotency row keeps it."""
        return _STORED_STATUS[self.outcome], {"outcome": self.outcome, "data": self.data}

    @classmethod
    def from_stored(cls, response: dict[str, Any]) -> IntakeAnswer:
        outcome = response.get("outcome")
        if outcome in _STORED_STATUS:
            return cls(outcome, dict(response.get("data") or {}), replayed=True)
        # A row written by an earlier release (kept 24 h): the original gateway's envelope.
        if response.get("success"):
            data = dict(response.get("data") or {})
            return cls("delivered" if data.get("status") == "delivered" else "queued", data, True)
        return cls("refused", dict(response.get("details") or {}), replayed=True)


@dataclass
class LeadIntake:
    database: Database
    settings: Settings
    signals: DeliverySignals
    fields: Callable[[], FieldLists | None]
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    account_key: str = "default"  # the amoCRM account this intake stores leads for

    async def accept(self, submission: Submission) -> IntakeAnswer:
        key = submission.idempotency_key
        lead = submission.lead
        payload = mapping.stored_payload(lead, self.settings.phone_default_region)
        warnings = lead.warnings + await self._name_warnings(payload)
        delivery_id = uuid.uuid4().hex
        now = self.clock()
        digest = body_hash(submission.received) if key else ""

        delivery = {
            "delivery_id": delivery_id,
            "payload": payload,
            "received": submission.received,
            "lead_name": lead.lead.name,
            "contact_name": mapping.contact_name(payload["contact"]),
            "api_key_id": submission.api_key_id,
            "account_key": self.account_key,
            "request_id": submission.request_id,
            "now": now,
            "give_up_at": now + timedelta(hours=self.settings.delivery_max_age_hours),
            "warnings": warnings,
        }

        async def claim_key_and_store(
            conn: AsyncConnection,
        ) -> idempotency.IdempotencyRecord | None:
            assert key is not None
            earlier = await idempotency.claim(
                conn,
                api_key_id=submission.api_key_id,
                key=key,
                body_hash=digest,
                delivery_id=delivery_id,
                now=now,
                expires_at=now + IDEMPOTENCY_TTL,
            )
            if earlier is None:
                await store.insert_delivery(conn, **delivery)
            return earlier

        # Committed (with other requests' leads, in one transaction) before we go on.
        earlier = None
        if key is None:
            await store.insert_delivery_grouped(self.database, **delivery)
        else:
            earlier = await self.database.grouped(claim_key_and_store)
        if earlier is not None:
            return await self._replay(earlier, digest)
        log.info("lead.accepted", delivery_id=delivery_id, warnings=len(warnings))
        self.signals.wake()
        answer = await self.answer(delivery_id, warnings)
        if key is not None:
            status_code, stored = answer.stored()
            async with self.database.transaction() as conn:
                await idempotency.save_response(
                    conn,
                    api_key_id=submission.api_key_id,
                    key=key,
                    status_code=status_code,
                    response=stored,
                )
        return answer

    async def _replay(self, earlier: idempotency.IdempotencyRecord, digest: str) -> IntakeAnswer:
        if earlier.body_hash != digest:
            raise Conflict(
                "Idempotency-Key was already used with a different request",
                details={"Idempotency-Key": "Use a new key for a different request"},
            )
        if earlier.response is not None and earlier.status_code is not None:
            return IntakeAnswer.from_stored(earlier.response)
        # The first request is still waiting for its delivery: answer from the same delivery.
        assert earlier.delivery_id is not None
        answer = await self.answer(earlier.delivery_id)
        return IntakeAnswer(answer.outcome, answer.data, replayed=True)

    async def _name_warnings(self, payload: dict[str, Any]) -> list[dict[str, str]]:
        """Fields and option labels the account does not have, as warnings for the answer
        (the worker resolves them again and puts their values into the note). Only looked up
        when the request names fields by name or label; without the lists, nothing is said."""
        source = self.fields()
        if source is None or not mapping.uses_names(payload):
            return []
        try:
            fields = await asyncio.wait_for(account_fields(source), FIELDS_WAIT_SECONDS)
        except (GatewayError, TimeoutError):
            log.info("lead.fields.deferred")
            return []
        built = mapping.form_item(payload, fields, delivery_id="check", created_at=0)
        return warnings_of([Remark.model_validate(r) for r in built.remarks])

    async def answer(
        self, delivery_id: str, warnings: list[dict[str, str]] | None = None
    ) -> IntakeAnswer:
        """Wait up to LEAD_SYNC_TIMEOUT for the delivery to settle, then describe it. The
        warnings are the delivery's (the intake's `warnings` until it has been read)."""
        delivery = await self.wait(delivery_id, self.settings.lead_sync_timeout)
        if delivery is not None:
            warnings = delivery.warnings
        if delivery is not None and delivery.status == store.DELIVERED:
            data: dict[str, Any] = {
                "uid": delivery.amo_uid,
                "source_uid": delivery.id,
                "lead_id": delivery.amo_lead_id,
                "contact_id": delivery.amo_contact_id,
                "delivery_id": delivery.id,
                "status": "delivered",
                "_embedded": {"unsorted": [unsorted_view(delivery)]},
            }
            if warnings:
                data["warnings"] = warnings
            return IntakeAnswer("delivered", data)
        if delivery is not None and delivery.status == store.FAILED:
            fields = (delivery.error_details or {}).get("fields") or {
                "request": delivery.last_error or "amoCRM rejected the lead"
            }
            return IntakeAnswer("refused", dict(fields))
        queued: dict[str, Any] = {"delivery_id": delivery_id, "status": "queued"}
        if warnings:
            queued["warnings"] = warnings
        return IntakeAnswer("queued", queued)

    async def wait(self, delivery_id: str, seconds: float) -> store.Delivery | None:
        if seconds <= 0:
            return None  # LEAD_SYNC_TIMEOUT=0: always answer "queued", without a read
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        event = self.signals.watch(delivery_id)
        try:
            while True:
                async with self.database.read() as conn:
                    delivery = await store.get(conn, delivery_id)
                remaining = deadline - loop.time()
                if delivery is None or delivery.is_terminal or remaining <= 0:
                    return delivery
                if delivery.status == store.RETRYING:
                    # An attempt already failed (amoCRM down, limiting, not connected): say
                    # "queued" now rather than hold the caller for a retry that may fail too.
                    return delivery
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), min(remaining, POLL_SECONDS))
                event.clear()
        finally:
            self.signals.unwatch(delivery_id, event)


def unsorted_view(delivery: store.Delivery) -> dict[str, Any]:
    """The created unsorted item as the original gateway answered it (`data._embedded.unsorted`,
    amoCRM's own shape) with the ids lifted to the top for convenience."""
    return {
        "uid": delivery.amo_uid,
        "source_uid": delivery.id,
        "lead_id": delivery.amo_lead_id,
        "contact_id": delivery.amo_contact_id,
        "created_at": int(delivery.created_at.timestamp()),
        "_embedded": {
            "leads": [{"id": delivery.amo_lead_id}] if delivery.amo_lead_id else [],
            "contacts": [{"id": delivery.amo_contact_id}] if delivery.amo_contact_id else [],
        },
    }


def idempotency_key(value: str | None) -> str | None:
    """The caller's idempotency key (surrounding blanks dropped); None when none was given."""
    if value is None:
        return None
    key = value.strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY:
        raise ValidationFailed(
            details={"Idempotency-Key": f"Must be 1-{MAX_IDEMPOTENCY_KEY} characters"}
        )
    return key
