"""One pass of the delivery worker: claim due leads, send them to amoCRM in batches, record.

`Deliverer.run_once()` is what the worker loop calls and what tests drive step by step:

1. claim up to `batch_size` due deliveries (leased, see storage/deliveries.py);
2. forms whose last send has an unknown outcome are reconciled first (`reconcile.py`);
3. each lead's existing amoCRM contact is found (`amogate.contacts.resolve`), then the rest go
   out as ONE `POST /api/v4/leads/unsorted/forms` — or `leads/complex` for `"mode": "lead"`
   (`forms.py`: values amoCRM refuses are left out once, one bad lead never holds back the
   others);
4. the manager's notes of created leads go out the same way as ONE `POST /api/v4/leads/notes`
   (`notes.py`);
5. failures, classified once (`amogate.failures`), are rescheduled by the `RetryPolicy`; every
   attempt is recorded (`records.py`).

Calls spend the shared outbound budget; a long 429 pause makes the limiter raise instead of
sleeping (`client.py`), and the deliveries are simply rescheduled.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from amogate.amocrm.client import AmoClient
from amogate.amocrm.errors import AmoError
from amogate.connection.service import AmoConnection
from amogate.contacts.resolve import ContactResolver
from amogate.deliveries.signals import DeliverySignals
from amogate.failures import classify
from amogate.leads.fields import FieldLists
from amogate.storage import deliveries as store
from amogate.storage.db import Database
from amogate.worker.client import DeliveryClient
from amogate.worker.forms import Matching, deliver_forms
from amogate.worker.notes import send_notes
from amogate.worker.records import Clock, Recorder
from amogate.worker.retry import RetryPolicy
from amogate.worker.work import Work

BATCH_SIZE = 50
# Longest shared 429 pause (s) a worker sits out before rescheduling its batch instead.
MAX_PAUSE_WAIT = 5.0


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Deliverer:
    database: Database
    amo: AmoConnection
    fields: FieldLists
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    owner: str = field(default_factory=lambda: f"worker-{uuid.uuid4().hex[:12]}")
    lease: timedelta = timedelta(seconds=60)
    batch_size: int = BATCH_SIZE
    max_pause_wait: float = MAX_PAUSE_WAIT
    clock: Clock = utcnow
    rand: Callable[[], float] = random.random
    signals: DeliverySignals | None = None
    contacts: ContactResolver | None = None  # None: every lead creates its own contact
    _client: DeliveryClient | None = None

    async def run_once(self) -> int:
        """Claim one batch and take it as far as amoCRM allows. Returns how many were claimed."""
        now = self.clock()
        async with self.database.transaction() as conn:
            batch = await store.claim_due(
                conn,
                owner=self.owner,
                now=now,
                lease_until=now + self.lease,
                limit=self.batch_size,
                account_key=self.amo.account_key,  # each account's worker, its own leads
            )
        if not batch:
            return 0
        try:
            await self._process(batch)
        except asyncio.CancelledError:
            # Shutting down: hand unfinished rows back now rather than when the lease runs out.
            with contextlib.suppress(Exception):
                await asyncio.shield(self.release([d.id for d in batch]))
            raise
        finally:
            if self.signals is not None:
                self.signals.settled(d.id for d in batch)
        return len(batch)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def release(self, ids: Sequence[str]) -> None:
        async with self.database.transaction() as conn:
            await store.release(conn, ids, owner=self.owner, now=self.clock())

    async def client(self) -> AmoClient:
        if self._client is None:
            self._client = DeliveryClient(self.amo, self.max_pause_wait)
        return await self._client.current()

    def recorder(self) -> Recorder:
        return Recorder(self.database, self.owner, self.clock, self.policy, self.rand)

    async def _process(self, batch: list[store.Delivery]) -> None:
        recorder = self.recorder()
        forms = [Work(d) for d in batch if d.step == store.STEP_FORM]
        notes = [Work(d, lead_id=d.amo_lead_id) for d in batch if d.step == store.STEP_NOTE]
        for delivery in batch:
            if delivery.step not in (store.STEP_FORM, store.STEP_NOTE):
                await recorder.delivered(delivery, note_id=delivery.amo_note_id)
        try:
            client = await self.client()
        except AmoError as exc:
            await recorder.reschedule([w.delivery for w in forms + notes], classify(exc), "form")
            return
        if forms:
            matching = Matching(self.contacts, self.amo.account_key)
            created = await deliver_forms(client, recorder, self.fields, forms, matching)
            if self.signals is not None:  # their callers answer now; the notes follow
                self.signals.settled(w.delivery.id for w in created)
            notes += created
        if notes:
            await send_notes(client, recorder, notes)
