"""The leads themselves: ONE `POST /api/v4/leads/unsorted/forms` per batch.

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
from datetime import datetime
from typing import Any

import structlog

from amogate.amocrm.client import AmoClient
from amogate.amocrm.errors import AmoError, AmoPermanentError
from amogate.errors import GatewayError
from amogate.failures import Failure, classify
from amogate.leads import mapping, refusals
from amogate.leads.fields import FieldLists, account_fields
from amogate.storage import deliveries as store
from amogate.worker.reconcile import reconcile_forms
from amogate.worker.records import Recorder
from amogate.worker.work import Work, elapsed_ms, merge_warnings

log = structlog.get_logger("amogate.worker")

LOST = "amoCRM's answer did not list this lead"


async def deliver_forms(
    client: AmoClient, recorder: Recorder, field_lists: FieldLists, forms: list[Work]
) -> list[Work]:
    """Send (or reconcile) the forms; the works whose lead now exists in amoCRM."""
    try:
        fields = await account_fields(field_lists)
    except GatewayError as exc:
        # The info cache classified amoCRM's failure; anything else is the gateway's own.
        failure = exc.upstream or Failure("transient", None, exc.message, exc.message)
        await recorder.reschedule([w.delivery for w in forms], failure, "form")
        return []
    for work in forms:
        work.built = build(work, fields)
    created: list[Work] = []
    unknown = [w for w in forms if w.delivery.outcome_unknown]
    if unknown:
        found, unresolved = await reconcile_forms(client, recorder, unknown)
        created += found
        done = {id(w) for w in unknown}
        forms = [w for w in forms if id(w) not in done] + unresolved
    if forms:
        created += await send_forms(client, recorder, forms, fields)
    return created


def build(work: Work, fields: mapping.AccountFields) -> mapping.FormItem:
    delivery = work.delivery
    return mapping.form_item(
        work.payload,
        fields,
        delivery_id=delivery.id,
        created_at=int(delivery.created_at.timestamp()),
    )


async def send_forms(
    client: AmoClient, recorder: Recorder, forms: list[Work], fields: mapping.AccountFields
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
            results = await client.create_unsorted_forms(items)
        except AmoPermanentError as exc:
            failing = {v.request_id: v for v in exc.validation_errors if v.request_id in pending}
            if not failing and len(pending) > 1:
                # A rejection that names no item: find the culprit by sending one by one.
                for work in list(pending.values()):
                    created += await send_forms(client, recorder, [work], fields)
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
        by_request = {r.request_id: r for r in results}
        ms = elapsed_ms(t0)
        lost: list[store.Delivery] = []
        async with recorder.database.transaction() as conn:
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
                    detail=f"unsorted {result.uid}, lead {result.lead_id}",
                )
                if await store.mark_form_created(
                    conn,
                    delivery_id,
                    owner=recorder.owner,
                    now=recorder.clock(),
                    uid=result.uid,
                    lead_id=result.lead_id,
                    contact_id=result.contact_id,
                    remarked=work.created_record(),
                ):
                    work.created(result.lead_id)
                    created.append(work)
        if lost:
            failure = Failure("transient", 200, LOST, LOST, maybe_applied=True)
            await recorder.reschedule(lost, failure, "form", started, ms)
        log.info("delivery.forms.sent", count=len(items), created=len(created))
        pending = {}
    return created


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
