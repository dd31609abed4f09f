"""One pass of the delivery worker: claim due leads, send them to amoCRM in batches, record.

`Deliverer.run_once()` is what the worker loop calls and what tests drive step by step:

1. claim up to `batch_size` due deliveries (leased, see storage/deliveries.py);
2. forms whose last send has an unknown outcome are reconciled first: recent unsorted items are
   looked up by `source_uid` (= delivery id); found ones are not sent again;
3. the rest go out as ONE `POST /api/v4/leads/unsorted/forms`; results are matched by
   `request_id` (= delivery id). amoCRM rejects the whole batch with 400 when any item is
   invalid, listing each failing item with per-field errors. A failing item whose errors all
   name values that can be left out (a custom field value, the price, a tag, the pipeline...)
   is sent again ONCE without them, the values and amoCRM's reasons going to its note and its
   warnings (`amogate.leads.refusals`); only an item refused as a whole (or again) fails. The
   valid items are sent again with them, so one bad lead never holds back the others;
4. the manager's notes of created leads go out the same way as ONE `POST /api/v4/leads/notes`;
5. failures are rescheduled by the `RetryPolicy`; every attempt is recorded.

Calls spend the shared outbound budget; a long 429 pause makes the limiter raise instead of
sleeping, and the deliveries are simply rescheduled.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from amogate.amocrm.auth import BearerAuth
from amogate.amocrm.client import AmoClient
from amogate.amocrm.errors import (
    AmoAuthError,
    AmoBlockedError,
    AmoError,
    AmoPaymentError,
    AmoPermanentError,
    AmoRateLimitedError,
    AmoTimeoutError,
    AmoTransientError,
    FieldError,
)
from amogate.amocrm.models import UnsortedResult, unsorted_result
from amogate.connection.service import AmoConnection
from amogate.contacts.resolve import ContactChoice, ContactPlan, ContactResolver, no_matching
from amogate.errors import GatewayError, UpstreamError
from amogate.info.cache import NEEDS_REAUTHORIZATION, NOT_CONNECTED, RATE_LIMITED
from amogate.leads import complex_item, direct, mapping, refusals
from amogate.leads.fields import FieldLists, account_fields
from amogate.storage import deliveries as store
from amogate.storage.db import Database
from amogate.worker.retry import Outcome, RetryPolicy
from amogate.worker.signals import DeliverySignals

log = structlog.get_logger("amogate.worker")

BATCH_SIZE = 50
# Longest shared 429 pause (s) a worker sits out before rescheduling its batch instead.
MAX_PAUSE_WAIT = 5.0
# Reconciliation looks this far back before an item's creation (clock skew between hosts).
RECONCILE_MARGIN = 300
RECONCILE_MAX_PAGES = 20
# How long a lead waits for a contact another worker is creating for the same person.
CONTACT_WAIT = timedelta(seconds=1)

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Failure:
    """How one amoCRM call failed, in the words the records and the policy use."""

    outcome: Outcome
    http_status: int | None
    detail: str
    message: str
    retry_after: float | None = None
    blocked_for: float | None = None
    maybe_applied: bool = False


_TRANSPORT_TEXT = {
    AmoTimeoutError: "amoCRM did not answer in time",
    AmoRateLimitedError: "amoCRM rate limit reached",
    AmoTransientError: "amoCRM is unavailable",
    AmoAuthError: "amoCRM needs (re)authorization",
    AmoBlockedError: "amoCRM refused access (403)",
    AmoPaymentError: "the amoCRM account's paid period has ended",
    AmoPermanentError: "amoCRM rejected the request",
}


def classify(exc: AmoError) -> _Failure:
    """An amoCRM error as a failure record. Exception text never goes in: only amoCRM's own
    (redacted, truncated) answer body or a fixed description."""
    text = next(
        (text for kind, text in _TRANSPORT_TEXT.items() if isinstance(exc, kind)),
        "amoCRM returned an error",
    )
    message = f"{text} (HTTP {exc.status})" if exc.status else text
    detail = exc.body_excerpt or message
    if isinstance(exc, AmoRateLimitedError):
        return _Failure("rate_limited", exc.status, detail, message, exc.retry_after)
    if isinstance(exc, AmoTransientError):
        return _Failure(
            "transient", exc.status, detail, message, exc.retry_after, None, exc.maybe_applied
        )
    if isinstance(exc, AmoAuthError):
        return _Failure("auth", exc.status, detail, message)
    if isinstance(exc, AmoBlockedError):
        return _Failure("blocked", exc.status, detail, message, blocked_for=exc.blocked_for)
    if isinstance(exc, AmoPaymentError):
        return _Failure("payment", exc.status, detail, message)
    if isinstance(exc, AmoPermanentError) and exc.status in (400, 422):
        return _Failure("permanent", exc.status, detail, message)
    # 404 and other oddities: most likely a misrouted request, so keep the lead and retry.
    return _Failure("transient", exc.status, detail, message)


def classify_gateway(exc: GatewayError) -> _Failure:
    """A failure of the info cache (it speaks the gateway's errors)."""
    status = exc.upstream_status
    message = f"{exc.message} (HTTP {status})" if status else exc.message
    if exc.message in (NOT_CONNECTED, NEEDS_REAUTHORIZATION):
        return _Failure("auth", status, message, message)
    if exc.message == RATE_LIMITED:
        return _Failure("rate_limited", 429, message, message, exc.retry_after)
    if isinstance(exc, UpstreamError) and "paid period" in str(exc.details.get("reason", "")):
        return _Failure("payment", 402, message, message)
    return _Failure("transient", status, message, message, exc.retry_after)


@dataclass
class _Work:
    delivery: store.Delivery
    built: mapping.FormItem | None = None
    lead_id: int | None = None
    resent: bool = False  # sent again without refused values: a second refusal fails it
    contact: ContactChoice | None = None  # which contact the lead links (contacts.resolve)
    contact_id: int | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    warnings: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.payload = self.delivery.payload
        self.warnings = list(self.delivery.warnings)

    def created_record(self) -> tuple[dict[str, Any], list[dict[str, str]]] | None:
        """Payload and warnings with what building the form set aside (None: nothing was)."""
        remarks = self.built.remarks if self.built is not None else []
        if not remarks:
            return None
        return mapping.add_remarks(self.payload, remarks), merge_warnings(self.warnings, remarks)


def merge_warnings(
    warnings: list[dict[str, str]], remarks: Sequence[Mapping[str, Any]]
) -> list[dict[str, str]]:
    merged = list(warnings)
    seen = {(w["field"], w["problem"]) for w in merged}
    for item in remarks:
        key = (str(item["field"]), str(item["problem"]))
        if key not in seen:
            seen.add(key)
            merged.append({"field": key[0], "problem": key[1]})
    return merged


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
    _client: AmoClient | None = None
    _client_base: str = ""
    _delivery_field: dict[str, Any] | None = None

    async def run_once(self) -> int:
        """Claim one batch and take it as far as amoCRM allows. Returns how many were claimed."""
        now = self.clock()
        async with self.database.transaction() as conn:
            batch = await store.claim_due(
                conn, owner=self.owner, now=now, lease_until=now + self.lease, limit=self.batch_size
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
            await self._client.aclose()
            self._client = None

    async def release(self, ids: Sequence[str]) -> None:
        async with self.database.transaction() as conn:
            await store.release(conn, ids, owner=self.owner, now=self.clock())

    # --- one batch -------------------------------------------------------------------------

    async def _process(self, batch: list[store.Delivery]) -> None:
        forms = [_Work(d) for d in batch if d.step == store.STEP_FORM]
        notes = [_Work(d, lead_id=d.amo_lead_id) for d in batch if d.step == store.STEP_NOTE]
        for work in batch:
            if work.step not in (store.STEP_FORM, store.STEP_NOTE):
                await self._finish_delivered(work, note_id=work.amo_note_id)
        try:
            client = await self.client()
        except AmoError as exc:
            await self._reschedule([w.delivery for w in forms + notes], classify(exc), "form")
            return
        if forms:
            notes += await self._forms(client, forms)
        if notes:
            await self._notes(client, notes)

    async def _forms(self, client: AmoClient, forms: list[_Work]) -> list[_Work]:
        """Send (or reconcile) the forms; the works whose lead now exists in amoCRM."""
        try:
            fields = await account_fields(self.fields)
        except GatewayError as exc:
            await self._reschedule([w.delivery for w in forms], classify_gateway(exc), "form")
            return []
        if any(direct.is_direct(w.payload) for w in forms):
            try:
                fields = await self._with_delivery_field(client, fields)
            except AmoError as exc:
                await self._reschedule([w.delivery for w in forms], classify(exc), "form")
                return []
        for work in forms:
            work.built = self._build(work, fields)
        created: list[_Work] = []
        unknown = [w for w in forms if w.delivery.outcome_unknown]
        if unknown:
            found, unresolved = await self._reconcile(client, unknown)
            created += found
            done = {id(w) for w in unknown}
            forms = [w for w in forms if id(w) not in done] + unresolved
        if forms:
            created += await self._send_with_contacts(client, forms, fields)
        return created

    async def _send_with_contacts(
        self, client: AmoClient, forms: list[_Work], fields: mapping.AccountFields
    ) -> list[_Work]:
        """Find each lead's existing contact (contacts.resolve), then send: the leads whose
        contact is known or new first, then the leads linking a contact the first wave made."""
        account = self.amo.tokens.account_key
        ids = [w.delivery.id for w in forms]
        try:
            plan = (
                no_matching(ids, account)
                if self.contacts is None
                else await self.contacts.plan(
                    client, account, [(w.delivery.id, w.payload) for w in forms]
                )
            )
        except AmoError as exc:
            await self._reschedule([w.delivery for w in forms], classify(exc), "contact")
            return []
        by_id = {w.delivery.id: w for w in forms}
        created = await self._send_wave(client, [by_id[i] for i in plan.first], plan, fields)
        if self.contacts is not None:
            await self.contacts.settle(plan, {i: by_id[i].contact_id for i in plan.first})
        created += await self._send_wave(client, [by_id[i] for i in plan.then], plan, fields)
        await self._wait_for_contact([by_id[i].delivery for i in plan.deferred])
        return created

    async def _send_wave(
        self,
        client: AmoClient,
        works: list[_Work],
        plan: ContactPlan,
        fields: mapping.AccountFields,
    ) -> list[_Work]:
        created: list[_Work] = []
        for work in works:
            work.contact = plan.choices.get(work.delivery.id)
            work.built = self._build(work, fields)
        for want_direct in (False, True):
            same = [w for w in works if direct.is_direct(w.payload) == want_direct]
            if same:
                created += await self._send_forms(client, same, fields)
        return created

    async def _wait_for_contact(self, waiting: list[store.Delivery]) -> None:
        """Another worker is creating these leads' contact right now: try again in a moment
        (not a failed attempt), to link it rather than create a second one."""
        if not waiting:
            return
        now = self.clock()
        async with self.database.transaction() as conn:
            for delivery in waiting:
                await store.schedule_retry(
                    conn,
                    delivery.id,
                    owner=self.owner,
                    now=now,
                    at=now + CONTACT_WAIT,
                    error="waiting for its contact, which another lead of the same person creates",
                    count_attempt=False,
                    outcome_unknown=False,
                )
        log.info("delivery.contact.waiting", count=len(waiting))

    async def _with_delivery_field(
        self, client: AmoClient, fields: mapping.AccountFields
    ) -> mapping.AccountFields:
        """The field lists with the delivery id field direct leads carry (created once)."""
        if complex_item.has_delivery_field(fields):
            return fields
        if self._delivery_field is None:
            self._delivery_field = await direct.delivery_field(client)
        return mapping.AccountFields([*fields.lead, self._delivery_field], fields.contact)

    @staticmethod
    def _build(work: _Work, fields: mapping.AccountFields) -> mapping.FormItem:
        delivery = work.delivery
        contact = work.contact or ContactChoice()
        build = complex_item.complex_item if direct.is_direct(work.payload) else mapping.form_item
        built = build(
            work.payload,
            fields,
            delivery_id=delivery.id,
            created_at=int(delivery.created_at.timestamp()),
            contact_id=contact.contact_id,
        )
        built.remarks += contact.remarks
        return built

    async def _reconcile(
        self, client: AmoClient, unknown: list[_Work]
    ) -> tuple[list[_Work], list[_Work]]:
        """Find forms that reached amoCRM although we never saw the answer."""
        started, t0 = self.clock(), time.perf_counter()
        wanted = {w.delivery.id: w for w in unknown}
        try:
            matches = await self._find_unsorted(
                client, [w for w in unknown if not direct.is_direct(w.payload)]
            )
            lost = {
                w.delivery.id: w.delivery.created_at for w in unknown if direct.is_direct(w.payload)
            }
            if lost:
                matches.update(await direct.find_sent(client, lost))
        except AmoError as exc:
            failure = classify(exc)
            failure.maybe_applied = True  # still unknown: reconcile again next time
            await self._reschedule([w.delivery for w in unknown], failure, "reconcile")
            return [], []
        ms = _ms(t0)
        found: list[_Work] = []
        async with self.database.transaction() as conn:
            for delivery_id, work in wanted.items():
                result = matches.get(delivery_id)
                outcome = "ok" if result is not None else "not_found"
                detail = None if result is None else f"found unsorted {result.uid}"
                await store.record_attempt(
                    conn,
                    delivery_id,
                    step="reconcile",
                    started_at=started,
                    duration_ms=ms,
                    outcome=outcome,
                    http_status=200,
                    detail=detail,
                )
                if result is not None and await store.mark_form_created(
                    conn,
                    delivery_id,
                    owner=self.owner,
                    now=self.clock(),
                    uid=result.uid or None,
                    lead_id=result.lead_id,
                    contact_id=result.contact_id,
                    contact_matched=_matched(work),
                    remarked=work.created_record(),
                ):
                    self._created(work, result.lead_id, result.contact_id)
                    found.append(work)
        if self.contacts is not None:
            for work in found:
                if work.contact_id is not None:
                    account = self.amo.tokens.account_key
                    await self.contacts.remember(account, work.payload, work.contact_id)
        log.info("delivery.reconciled", found=len(found), unknown=len(unknown))
        missing = [w for w in unknown if w.delivery.id not in matches]
        return found, missing

    @staticmethod
    async def _find_unsorted(client: AmoClient, unknown: list[_Work]) -> dict[str, UnsortedResult]:
        """Recent unsorted items by `source_uid` (= delivery id)."""
        matches: dict[str, UnsortedResult] = {}
        if not unknown:
            return matches
        wanted = {w.delivery.id for w in unknown}
        since = int(min(w.delivery.created_at for w in unknown).timestamp()) - RECONCILE_MARGIN
        for page in range(1, RECONCILE_MAX_PAGES + 1):
            items = await client.list_unsorted(
                page=page, limit=250, order={"created_at": "desc"}, category=["forms"]
            )
            for item in items:
                source_uid = item.get("source_uid")
                if source_uid in wanted and source_uid not in matches:
                    matches[str(source_uid)] = unsorted_result(item)
            oldest = min((i.get("created_at", 0) for i in items), default=0)
            if len(items) < 250 or len(matches) == len(wanted) or oldest < since:
                break
        return matches

    async def _send_forms(
        self, client: AmoClient, forms: list[_Work], fields: mapping.AccountFields
    ) -> list[_Work]:
        created: list[_Work] = []
        pending = {w.delivery.id: w for w in forms}
        while pending:
            async with self.database.transaction() as conn:
                await store.mark_sending_form(
                    conn, list(pending), owner=self.owner, now=self.clock()
                )
            started, t0 = self.clock(), time.perf_counter()
            items = [w.built.item for w in pending.values() if w.built is not None]
            try:
                if any(direct.is_direct(w.payload) for w in pending.values()):
                    results = [direct.sent(r) for r in await client.create_leads_complex(items)]
                else:
                    results = await client.create_unsorted_forms(items)
            except AmoPermanentError as exc:
                failing = {
                    v.request_id: v for v in exc.validation_errors if v.request_id in pending
                }
                gone = [
                    delivery_id
                    for delivery_id, errors in failing.items()
                    if await self._linked_contact_gone(pending[delivery_id], errors.errors, fields)
                ]
                if gone:
                    continue  # sent again with new contacts; other refusals are seen again
                if not failing and len(pending) > 1:
                    # A rejection that names no item: find the culprit by sending one by one.
                    for work in list(pending.values()):
                        created += await self._send_forms(client, [work], fields)
                    return created
                failure = classify(exc)
                for delivery_id in failing or list(pending):
                    work = pending[delivery_id]
                    errors = failing.get(delivery_id)
                    assert work.built is not None
                    fixed = (
                        refusals.without_refused(work.payload, work.built, errors.errors)
                        if errors is not None and not work.resent
                        else None
                    )
                    if fixed is not None:
                        await self._without_refused(work, fixed, fields, started, _ms(t0))
                        continue
                    pending.pop(delivery_id)
                    details = (
                        refusals.field_errors(work.payload, work.built, errors.errors)
                        if errors is not None
                        else {"fields": {"request": failure.message}}
                    )
                    await self._fail(
                        work.delivery,
                        "form",
                        "amoCRM rejected the lead",
                        details,
                        started=started,
                        ms=_ms(t0),
                        failure=failure,
                    )
                continue
            except AmoError as exc:
                await self._reschedule(
                    [w.delivery for w in pending.values()], classify(exc), "form", started, _ms(t0)
                )
                return created
            by_request = {r.request_id: r for r in results}
            ms = _ms(t0)
            lost: list[store.Delivery] = []
            async with self.database.transaction() as conn:
                for delivery_id, work in pending.items():
                    result = by_request.get(delivery_id)
                    if result is None or result.lead_id is None:
                        lost.append(work.delivery)
                        continue
                    await store.record_attempt(
                        conn,
                        delivery_id,
                        step="form",
                        started_at=started,
                        duration_ms=ms,
                        outcome="ok",
                        http_status=200,
                        detail=f"unsorted {result.uid}, lead {result.lead_id}"
                        if result.uid
                        else f"lead {result.lead_id} in its stage, contact {result.contact_id}",
                    )
                    if await store.mark_form_created(
                        conn,
                        delivery_id,
                        owner=self.owner,
                        now=self.clock(),
                        uid=result.uid or None,
                        lead_id=result.lead_id,
                        contact_id=result.contact_id,
                        contact_matched=_matched(work),
                        remarked=work.created_record(),
                    ):
                        self._created(work, result.lead_id, result.contact_id)
                        created.append(work)
            if lost:
                failure = _Failure(
                    "transient",
                    200,
                    "amoCRM's answer did not list this lead",
                    "amoCRM's answer did not list this lead",
                    maybe_applied=True,
                )
                await self._reschedule(lost, failure, "form", started, ms)
            log.info("delivery.forms.sent", count=len(items), created=len(created))
            pending = {}
        return created

    @staticmethod
    def _created(work: _Work, lead_id: int | None, contact_id: int | None) -> None:
        work.lead_id = lead_id
        work.contact_id = contact_id
        record = work.created_record()
        if record is not None:
            work.payload, work.warnings = record

    async def _linked_contact_gone(
        self, work: _Work, errors: Sequence[FieldError], fields: mapping.AccountFields
    ) -> bool:
        """amoCRM refused the existing contact the lead links (deleted, merged, its unsorted
        item declined): forget it everywhere and send the lead again with a new contact."""
        contact = work.contact
        if contact is None or contact.contact_id is None or self.contacts is None:
            return False
        if not complex_item.linked_contact_refused(errors):
            return False
        await self.contacts.forget(self.amo.tokens.account_key, contact.contact_id)
        work.contact = ContactChoice(contact.keys)
        work.built = self._build(work, fields)
        return True

    async def _without_refused(
        self,
        work: _Work,
        fixed: tuple[dict[str, Any], list[dict[str, Any]]],
        fields: mapping.AccountFields,
        started: datetime,
        ms: int,
    ) -> None:
        """amoCRM refused some values of this lead: keep them in its remarks (the note) and
        warnings, and send the lead again without them."""
        payload, remarks = fixed
        work.payload = mapping.add_remarks(payload, remarks)
        work.warnings = merge_warnings(work.warnings, remarks)
        work.resent = True
        work.built = self._build(work, fields)
        async with self.database.transaction() as conn:
            await store.record_attempt(
                conn,
                work.delivery.id,
                step="form",
                started_at=started,
                duration_ms=ms,
                outcome="values_refused",
                http_status=400,
                detail="; ".join(f"{r['field']}: {r['problem']}" for r in remarks),
            )
            await store.replace_payload(
                conn,
                work.delivery.id,
                owner=self.owner,
                now=self.clock(),
                payload=work.payload,
                warnings=work.warnings,
            )
        log.warning(
            "delivery.values_refused",
            delivery_id=work.delivery.id,
            request_id=work.delivery.request_id,
            fields=[r["field"] for r in remarks],
        )

    async def _notes(self, client: AmoClient, works: list[_Work]) -> None:
        pending: dict[str, tuple[_Work, dict[str, Any]]] = {}
        for work in works:
            delivery = work.delivery
            if work.lead_id is None:
                await self._finish_delivered(delivery, note_id=None)
                continue
            note = mapping.lead_note(work.payload, work.lead_id, request_id=delivery.id)
            if note is None:
                await self._finish_delivered(delivery, note_id=None, lead_id=work.lead_id)
                continue
            if delivery.outcome_unknown and delivery.step == store.STEP_NOTE:
                existing = await self._find_note(client, work.lead_id, note["params"]["text"])
                if existing is not None:
                    await self._finish_delivered(delivery, note_id=existing, lead_id=work.lead_id)
                    continue
            pending[delivery.id] = (work, note)
        while pending:
            async with self.database.transaction() as conn:
                await store.mark_sending_form(
                    conn, list(pending), owner=self.owner, now=self.clock()
                )
            started, t0 = self.clock(), time.perf_counter()
            try:
                results = await client.add_notes("leads", [note for _, note in pending.values()])
            except AmoPermanentError as exc:
                failing = {v.request_id for v in exc.validation_errors} & set(pending)
                for delivery_id in failing or set(pending):
                    work, _ = pending.pop(delivery_id)
                    # The lead exists; a note amoCRM refuses must not make it look undelivered.
                    await self._finish_delivered(
                        work.delivery,
                        note_id=None,
                        note_error="amoCRM rejected the note",
                        attempt=(started, _ms(t0), classify(exc)),
                        lead_id=work.lead_id,
                    )
                continue
            except AmoError as exc:
                await self._reschedule(
                    [w.delivery for w, _ in pending.values()],
                    classify(exc),
                    "note",
                    started,
                    _ms(t0),
                )
                return
            by_request = {r.request_id: r for r in results}
            ms = _ms(t0)
            for delivery_id, (work, _) in pending.items():
                result = by_request.get(delivery_id)
                await self._finish_delivered(
                    work.delivery,
                    note_id=None if result is None else result.id,
                    note_error=None
                    if result is not None
                    else "amoCRM's answer did not list the note",
                    attempt=(started, ms, None),
                    lead_id=work.lead_id,
                )
            pending = {}

    async def _find_note(self, client: AmoClient, lead_id: int, text: str) -> int | None:
        try:
            notes = await client.list_notes("leads", lead_id)
        except AmoError:
            return None
        for note in notes:
            if note.get("note_type") == "common" and (note.get("params") or {}).get("text") == text:
                return int(note["id"])
        return None

    # --- outcomes ----------------------------------------------------------------------------

    async def _finish_delivered(
        self,
        delivery: store.Delivery,
        *,
        note_id: int | None,
        note_error: str | None = None,
        attempt: tuple[datetime, int, _Failure | None] | None = None,
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

    async def _fail(
        self,
        delivery: store.Delivery,
        step: str,
        error: str,
        details: dict[str, Any],
        *,
        started: datetime | None = None,
        ms: int = 0,
        failure: _Failure | None = None,
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

    async def _reschedule(
        self,
        batch: Sequence[store.Delivery],
        failure: _Failure,
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

    # --- the amoCRM client -----------------------------------------------------------------

    async def client(self) -> AmoClient:
        """An API client on the shared budget that reschedules rather than sits out long
        pauses (its own `AmoClient`, so the app's client keeps its waiting limiter)."""
        base = await self.amo.api_base()
        if not base:
            raise AmoAuthError("amoCRM is not connected")
        if self._client is None or base != self._client_base:
            await self.close()
            self._client = AmoClient(
                base,
                auth=BearerAuth(self.amo.tokens),
                limiter=self.amo.limiter.with_max_wait(self.max_pause_wait),
                transport=self.amo.transport,
                on_call=self.amo.on_call,
            )
            self._client_base = base
        return self._client


def _matched(work: _Work) -> bool:
    """Whether the lead was linked to a contact that existed before it."""
    return work.contact is not None and work.contact.matched


def _ms(t0: float) -> int:
    return int((time.perf_counter() - t0) * 1000)
