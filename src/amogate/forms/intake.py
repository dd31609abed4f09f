"""Storing a form submission: the lead goes into the same delivery queue as every other lead.

`FormIntake.store` writes the delivery row (the lead, read by the intake's rules) and the
submission record in ONE transaction and returns; the worker delivers the lead like any other,
so a form is answered in milliseconds whatever amoCRM is doing. Tilda's `tranid` is unique per
form: a repeat finds the first submission's delivery and stores nothing. Spam (a filled
honeypot) is stored with the status `spam`, which no worker ever claims.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from amogate.leads import mapping
from amogate.leads.schemas import LeadRequest
from amogate.storage import deliveries as queue
from amogate.storage import forms as form_store
from amogate.storage.db import Database

log = structlog.get_logger("amogate.forms")

MAX_TRANID = 128


@dataclass(frozen=True)
class Stored:
    delivery_id: str
    repeated: bool  # the same tranid was stored before: nothing new was stored


@dataclass
class FormIntake:
    database: Database
    phone_region: str
    max_age: timedelta
    wake: Callable[[], None] = lambda: None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    async def store(
        self,
        form: form_store.FormRow,
        lead: LeadRequest,
        *,
        received: Sequence[tuple[str, str]],
        tranid: str | None,
        spam: bool,
        request_id: str | None,
    ) -> Stored:
        payload = mapping.stored_payload(lead, self.phone_region)
        now = self.clock()
        delivery_id = uuid.uuid4().hex
        row: dict[str, Any] = queue.delivery_row(
            delivery_id=delivery_id,
            payload=payload,
            received={"form": form.name, "fields": [list(pair) for pair in received]},
            lead_name=lead.lead.name,
            contact_name=mapping.contact_name(payload["contact"]),
            api_key_id=None,
            request_id=request_id,
            now=now,
            give_up_at=now + self.max_age,
            warnings=lead.warnings,
        )
        row["account_key"] = form.account_key
        if spam:
            row["status"] = form_store.SPAM_STATUS
        tranid = tranid[:MAX_TRANID] if tranid else None
        async with self.database.transaction() as conn:
            if tranid is not None:
                earlier = await form_store.submission_by_tranid(conn, form.id, tranid)
                if earlier is not None:
                    return Stored(earlier, repeated=True)
            recorded = await form_store.record_submission(
                conn,
                form_id=form.id,
                delivery_id=delivery_id,
                tranid=tranid,
                outcome=form_store.SPAM if spam else form_store.ACCEPTED,
                now=now,
            )
            if not recorded and tranid is not None:  # a concurrent repeat got there first
                earlier = await form_store.submission_by_tranid(conn, form.id, tranid)
                return Stored(earlier or delivery_id, repeated=True)
            await form_store.insert_delivery(conn, row)
        log.info("form.stored", form=form.id, delivery_id=delivery_id, spam=spam)
        if not spam:
            self.wake()
        return Stored(delivery_id, repeated=False)
