"""Reconciliation: did a send whose answer we never saw reach amoCRM anyway?

A form whose last send has an unknown outcome (a timeout, a lost connection) is looked up among
the recent unsorted items by `source_uid` (= delivery id) before it is sent again; a found one
is recorded as created and not sent twice. A note is looked up among its lead's notes by text.
"""

from __future__ import annotations

import time
from dataclasses import replace

import structlog

from amogate.amocrm.client import AmoClient
from amogate.amocrm.errors import AmoError
from amogate.amocrm.models import UnsortedResult, unsorted_result
from amogate.contacts.resolve import ContactResolver
from amogate.failures import classify
from amogate.leads.direct import find_sent, is_direct
from amogate.storage import deliveries as store
from amogate.worker.records import Recorder
from amogate.worker.work import Work, elapsed_ms

log = structlog.get_logger("amogate.worker")

# Reconciliation looks this far back before an item's creation (clock skew between hosts).
RECONCILE_MARGIN = 300
RECONCILE_MAX_PAGES = 20
PAGE_SIZE = 250


async def reconcile_forms(
    client: AmoClient,
    recorder: Recorder,
    unknown: list[Work],
    contacts: ContactResolver | None = None,
    account: str = "default",
) -> tuple[list[Work], list[Work]]:
    """Find forms that reached amoCRM although we never saw the answer: (found, still missing).
    When amoCRM cannot be asked, both are empty and the forms are rescheduled. Direct leads
    are found by the delivery id they carry (`amogate.leads.direct`); the contact of a found
    lead is remembered for its person (`contacts`)."""
    started, t0 = recorder.clock(), time.perf_counter()
    wanted = {w.delivery.id: w for w in unknown}
    try:
        matches = await _find_unsorted(client, [w for w in unknown if not is_direct(w.payload)])
        lost = {w.delivery.id: w.delivery.created_at for w in unknown if is_direct(w.payload)}
        if lost:
            matches.update(await find_sent(client, lost))
    except AmoError as exc:
        # Still unknown: reconcile again next time.
        failure = replace(classify(exc), maybe_applied=True)
        await recorder.reschedule([w.delivery for w in unknown], failure, "reconcile")
        return [], []
    ms = elapsed_ms(t0)
    found: list[Work] = []
    async with recorder.database.transaction() as conn:
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
            if result is not None:
                made = store.FormCreated(
                    delivery_id,
                    uid=result.uid or None,
                    lead_id=result.lead_id,
                    contact_id=result.contact_id,
                    remarked=work.created_record(),
                )
                if await store.mark_forms_created(
                    conn, [made], owner=recorder.owner, now=recorder.clock()
                ):
                    work.created(result.lead_id, result.contact_id)
                    found.append(work)
    if contacts is not None:
        for work in found:
            if work.contact_id is not None:
                await contacts.remember(account, work.payload, work.contact_id)
    log.info("delivery.reconciled", found=len(found), unknown=len(unknown))
    missing = [w for w in unknown if w.delivery.id not in matches]
    return found, missing


async def _find_unsorted(client: AmoClient, unknown: list[Work]) -> dict[str, UnsortedResult]:
    """Recent unsorted items by `source_uid` (= delivery id)."""
    matches: dict[str, UnsortedResult] = {}
    if not unknown:
        return matches
    wanted = {w.delivery.id for w in unknown}
    since = int(min(w.delivery.created_at for w in unknown).timestamp()) - RECONCILE_MARGIN
    for page in range(1, RECONCILE_MAX_PAGES + 1):
        items = await client.list_unsorted(
            page=page, limit=PAGE_SIZE, order={"created_at": "desc"}, category=["forms"]
        )
        for item in items:
            source_uid = item.get("source_uid")
            if source_uid in wanted and source_uid not in matches:
                matches[str(source_uid)] = unsorted_result(item)
        oldest = min((i.get("created_at", 0) for i in items), default=0)
        if len(items) < PAGE_SIZE or len(matches) == len(wanted) or oldest < since:
            break
    return matches


async def find_note(client: AmoClient, lead_id: int, text: str) -> int | None:
    """The id of the lead's common note with exactly this text, if amoCRM has it."""
    try:
        notes = await client.list_notes("leads", lead_id)
    except AmoError:
        return None
    for note in notes:
        if note.get("note_type") == "common" and (note.get("params") or {}).get("text") == text:
            return int(note["id"])
    return None
