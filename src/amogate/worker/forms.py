"""The leads themselves: ONE `POST /api/v4/leads/unsorted/forms` per batch (or ONE
`POST /api/v4/leads/complex` for the leads of `"mode": "lead"`, `amogate.leads.direct`).

Before sending, each lead's existing contact is found (`amogate.contacts.resolve`): the leads
whose contact is known, or who create a new one, go first; the leads of the same new person
then link the contact the first wave made. A linked contact amoCRM refuses (deleted, merged)
is forgotten and the lead sent again with a new contact.

Results are matched by `request_id` (= delivery id). amoCRM rejects the whole batch with 400
when any item is invalid, listing each failing item with per-field errors. A failing item whose
errors all name values that can be left out (a custom field value, the price, a tag, the
pipeline...) is sent again ONCE without them, the values and amoCRM's reasons going to its note
and its warnings (`amogate.leads.refusals`); only an item refused as a whole (or again) fails.
The valid items are sent again with them, so one bad lead never holds back the others. A
rejection that names no item is narrowed down by sending the items one by one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from amogate.amocrm.client import AmoClient
from amogate.amocrm.errors import AmoError, AmoPermanentError, FieldError
from amogate.contacts.resolve import ContactChoice, ContactPlan, ContactResolver, no_matching
from amogate.errors import GatewayError
from amogate.failures import Failure, classify
from amogate.leads import complex_item, direct, mapping, refusals
from amogate.leads.fields import FieldLists, account_fields
from amogate.storage import deliveries as store
from amogate.worker.reconcile import reconcile_forms
from amogate.worker.records import Recorder
from amogate.worker.work import Work, elapsed_ms, merge_warnings

log = structlog.get_logger("amogate.worker")

LOST = "amoCRM's answer did not list this lead"
# How long a lead waits for a contact another worker is creating for the same person.
CONTACT_WAIT = timedelta(seconds=1)
WAITING_FOR_CONTACT = "waiting for its contact, which another lead of the same person creates"


@dataclass
class Matching:
    """Contact matching for one account's batch (``contacts`` None: off, a contact per lead).
    ``delivery_field``: the direct-mode delivery id field, once known (kept per worker)."""

    contacts: ContactResolver | None
    account: str
    delivery_field: dict[str, Any] | None = None


async def deliver_forms(
    client: AmoClient,
    recorder: Recorder,
    field_lists: FieldLists,
    forms: list[Work],
    matching: Matching | None = None,
) -> list[Work]:
    """Send (or reconcile) the forms; the works whose lead now exists in amoCRM."""
    matching = matching or Matching(None, "default")
    try:
        fields = await account_fields(field_lists)
    except GatewayError as exc:
        # The info cache classified amoCRM's failure; anything else is the gateway's own.
        failure = exc.upstream or Failure("transient", None, exc.message, exc.message)
        await recorder.reschedule([w.delivery for w in forms], failure, "form")
        return []
    if any(direct.is_direct(w.payload) for w in forms):
        try:
            fields = await _with_delivery_field(client, fields, matching)
        except AmoError as exc:
            await recorder.reschedule([w.delivery for w in forms], classify(exc), "form")
            return []
    for work in forms:
        work.built = build(work, fields)
    created: list[Work] = []
    unknown = [w for w in forms if w.delivery.outcome_unknown]
    if unknown:
        found, unresolved = await reconcile_forms(
            client, recorder, unknown, matching.contacts, matching.account
        )
        created += found
        done = {id(w) for w in unknown}
        forms = [w for w in forms if id(w) not in done] + unresolved
    if forms:
        created += await _send_with_contacts(client, recorder, forms, fields, matching)
    return created


def build(work: Work, fields: mapping.AccountFields) -> mapping.FormItem:
    """The lead's unsorted form, or its complex item in direct mode, linking its contact when
    matching chose one."""
    delivery = work.delivery
    contact = work.contact or ContactChoice()
    make = complex_item.complex_item if direct.is_direct(work.payload) else mapping.form_item
    built = make(
        work.payload,
        fields,
        delivery_id=delivery.id,
        created_at=int(delivery.created_at.timestamp()),
        contact_id=contact.contact_id,
    )
    built.remarks += contact.remarks
    return built


async def _with_delivery_field(
    client: AmoClient, fields: mapping.AccountFields, matching: Matching
) -> mapping.AccountFields:
    """The field lists with the delivery id field direct leads carry (created once)."""
    if complex_item.has_delivery_field(fields):
        return fields
    if matching.delivery_field is None:
        matching.delivery_field = await direct.delivery_field(client)
    return mapping.AccountFields([*fields.lead, matching.delivery_field], fields.contact)


async def _send_with_contacts(
    client: AmoClient,
    recorder: Recorder,
    forms: list[Work],
    fields: mapping.AccountFields,
    matching: Matching,
) -> list[Work]:
    """Find each lead's existing contact, then send: the leads whose contact is known or new
    first, then the leads linking a contact the first wave made."""
    ids = [w.delivery.id for w in forms]
    resolver = matching.contacts
    try:
        plan = (
            no_matching(ids, matching.account)
            if resolver is None
            else await resolver.plan(
                client, matching.account, [(w.delivery.id, w.payload) for w in forms]
            )
        )
    except AmoError as exc:
        # Finding the contacts is part of sending the forms: the same step for the operator.
        await recorder.reschedule([w.delivery for w in forms], classify(exc), "form")
        return []
    by_id = {w.delivery.id: w for w in forms}
    first = [by_id[i] for i in plan.first]
    created = await _send_wave(client, recorder, first, plan, fields, matching)
    if resolver is not None:
        await resolver.settle(plan, {w.delivery.id: w.contact_id for w in first})
    then = [by_id[i] for i in plan.then]
    created += await _send_wave(client, recorder, then, plan, fields, matching)
    await _wait_for_contact(recorder, [by_id[i].delivery for i in plan.deferred])
    return created


async def _send_wave(
    client: AmoClient,
    recorder: Recorder,
    works: list[Work],
    plan: ContactPlan,
    fields: mapping.AccountFields,
    matching: Matching,
) -> list[Work]:
    created: list[Work] = []
    for work in works:
        work.contact = plan.choices.get(work.delivery.id)
        work.built = build(work, fields)
    for want_direct in (False, True):
        same = [w for w in works if direct.is_direct(w.payload) == want_direct]
        if same:
            created += await send_forms(client, recorder, same, fields, matching)
    return created


async def _wait_for_contact(recorder: Recorder, waiting: list[store.Delivery]) -> None:
    """Another worker is creating these leads' contact right now: try again in a moment
    (not a failed attempt), to link it rather than create a second one."""
    if not waiting:
        return
    now = recorder.clock()
    async with recorder.database.transaction() as conn:
        for delivery in waiting:
            await store.schedule_retry(
                conn,
                delivery.id,
                owner=recorder.owner,
                now=now,
                at=now + CONTACT_WAIT,
                error=WAITING_FOR_CONTACT,
                count_attempt=False,
                outcome_unknown=False,
            )
    log.info("delivery.contact.waiting", count=len(waiting))


async def _linked_contact_gone(
    work: Work, errors: list[FieldError], fields: mapping.AccountFields, matching: Matching
) -> bool:
    """amoCRM refused the existing contact the lead links (deleted, merged, its unsorted item
    declined): forget it everywhere and send the lead again with a new contact."""
    contact = work.contact
    if contact is None or contact.contact_id is None or matching.contacts is None:
        return False
    if not complex_item.linked_contact_refused(errors):
        return False
    await matching.contacts.forget(matching.account, contact.contact_id)
    work.contact = ContactChoice(contact.keys)
    work.built = build(work, fields)
    return True


async def send_forms(
    client: AmoClient,
    recorder: Recorder,
    forms: list[Work],
    fields: mapping.AccountFields,
    matching: Matching | None = None,
) -> list[Work]:
    created: list[Work] = []
    pending = {w.delivery.id: w for w in forms}
    while pending:
        async with recorder.database.transaction() as conn:
            await store.mark_sending_form(
                conn, list(pending), owner=recorder.owner, now=recorder.clock()
            )
        started, t0 = recorder.clock(), time.perf_counter()
        items = [w.built.item for w in pending.values() if w.built is not None]
        try:
            if any(direct.is_direct(w.payload) for w in pending.values()):
                results = [direct.sent(r) for r in await client.create_leads_complex(items)]
            else:
                results = await client.create_unsorted_forms(items)
        except AmoPermanentError as exc:
            failing = {v.request_id: v for v in exc.validation_errors if v.request_id in pending}
            if not failing and len(pending) > 1:
                # A rejection that names no item: find the culprit by sending one by one.
                for work in list(pending.values()):
                    created += await send_forms(client, recorder, [work], fields, matching)
                return created
            gone = [
                delivery_id
                for delivery_id, errors in failing.items()
                if matching is not None
                and await _linked_contact_gone(
                    pending[delivery_id], errors.errors, fields, matching
                )
            ]
            if gone:
                continue  # sent again with new contacts; other refusals are seen again
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
                    await _without_refused(recorder, work, fixed, fields, started, elapsed_ms(t0))
                    continue
                pending.pop(delivery_id)
                details = (
                    refusals.field_errors(work.payload, work.built, errors.errors)
                    if errors is not None
                    else {"fields": {"request": failure.message}}
                )
                await recorder.failed(
                    work.delivery,
                    "form",
                    "amoCRM rejected the lead",
                    details,
                    started=started,
                    ms=elapsed_ms(t0),
                    failure=failure,
                )
            continue
        except AmoError as exc:
            await recorder.reschedule(
                [w.delivery for w in pending.values()],
                classify(exc),
                "form",
                started,
                elapsed_ms(t0),
            )
            return created
        ms = elapsed_ms(t0)
        made, lost = await _record_created(
            recorder, pending, {r.request_id: r for r in results}, started, ms
        )
        created += made
        if lost:
            failure = Failure("transient", 200, LOST, LOST, maybe_applied=True)
            await recorder.reschedule(lost, failure, "form", started, ms)
        log.info("delivery.forms.sent", count=len(items), created=len(created))
        pending = {}
    return created


async def _record_created(
    recorder: Recorder,
    pending: dict[str, Work],
    by_request: dict[str | None, Any],
    started: datetime,
    ms: int,
) -> tuple[list[Work], list[store.Delivery]]:
    """Record the forms amoCRM created, in one transaction of three statements. Returns their
    works (those this worker still held) and the deliveries the answer did not account for."""
    lost: list[store.Delivery] = []
    found: list[tuple[Work, store.FormCreated]] = []
    for delivery_id, work in pending.items():
        result = by_request.get(delivery_id)
        if result is None or result.lead_id is None:
            lost.append(work.delivery)
            continue
        form = store.FormCreated(
            delivery_id,
            uid=result.uid or None,
            lead_id=result.lead_id,
            contact_id=result.contact_id,
            contact_matched=work.contact_matched,
            remarked=work.created_record(),
        )
        found.append((work, form))
    attempts = [
        {
            "delivery_id": made.delivery_id,
            "step": "form",
            "started_at": started,
            "duration_ms": ms,
            "outcome": "ok",
            "http_status": 200,
            "detail": f"unsorted {made.uid}, lead {made.lead_id}"
            if made.uid
            else f"lead {made.lead_id} in its stage, contact {made.contact_id}",
        }
        for _, made in found
    ]
    async with recorder.database.transaction() as conn:
        await store.record_attempts(conn, attempts)
        marked = await store.mark_forms_created(
            conn, [made for _, made in found], owner=recorder.owner, now=recorder.clock()
        )
    created = []
    for work, made in found:
        if made.delivery_id in marked:
            work.created(made.lead_id, made.contact_id)
            created.append(work)
    return created, lost


async def _without_refused(
    recorder: Recorder,
    work: Work,
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
    work.built = build(work, fields)
    async with recorder.database.transaction() as conn:
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
            owner=recorder.owner,
            now=recorder.clock(),
            payload=work.payload,
            warnings=work.warnings,
        )
    log.warning(
        "delivery.values_refused",
        delivery_id=work.delivery.id,
        request_id=work.delivery.request_id,
        fields=[r["field"] for r in remarks],
    )
