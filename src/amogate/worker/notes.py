"""The manager's notes of created leads: ONE `POST /api/v4/leads/notes` per batch.

The lead exists by now, so a note amoCRM refuses never makes it look undelivered: the delivery
ends delivered with the note's error. A note whose last send has an unknown outcome is looked
up first (`reconcile.find_note`) so it is not added twice.
"""

from __future__ import annotations

import time
from typing import Any

from amogate.amocrm.client import AmoClient
from amogate.amocrm.errors import AmoError, AmoPermanentError
from amogate.failures import classify
from amogate.leads import mapping
from amogate.storage import deliveries as store
from amogate.worker.reconcile import find_note
from amogate.worker.records import Recorder
from amogate.worker.work import Work, elapsed_ms


async def send_notes(client: AmoClient, recorder: Recorder, works: list[Work]) -> None:
    pending: dict[str, tuple[Work, dict[str, Any]]] = {}
    for work in works:
        delivery = work.delivery
        if work.lead_id is None:
            await recorder.delivered(delivery, note_id=None)
            continue
        note = mapping.lead_note(work.payload, work.lead_id, request_id=delivery.id)
        if note is None:
            await recorder.delivered(delivery, note_id=None, lead_id=work.lead_id)
            continue
        if delivery.outcome_unknown and delivery.step == store.STEP_NOTE:
            existing = await find_note(client, work.lead_id, note["params"]["text"])
            if existing is not None:
                await recorder.delivered(delivery, note_id=existing, lead_id=work.lead_id)
                continue
        pending[delivery.id] = (work, note)
    while pending:
        async with recorder.database.transaction() as conn:
            await store.mark_sending_form(
                conn, list(pending), owner=recorder.owner, now=recorder.clock()
            )
        started, t0 = recorder.clock(), time.perf_counter()
        try:
            results = await client.add_notes("leads", [note for _, note in pending.values()])
        except AmoPermanentError as exc:
            failing = {v.request_id for v in exc.validation_errors} & set(pending)
            for delivery_id in failing or set(pending):
                work, _ = pending.pop(delivery_id)
                # The lead exists; a note amoCRM refuses must not make it look undelivered.
                await recorder.delivered(
                    work.delivery,
                    note_id=None,
                    note_error="amoCRM rejected the note",
                    attempt=(started, elapsed_ms(t0), classify(exc)),
                    lead_id=work.lead_id,
                )
            continue
        except AmoError as exc:
            await recorder.reschedule(
                [w.delivery for w, _ in pending.values()],
                classify(exc),
                "note",
                started,
                elapsed_ms(t0),
            )
            return
        by_request = {r.request_id: r for r in results}
        ms = elapsed_ms(t0)
        for delivery_id, (work, _) in pending.items():
            result = by_request.get(delivery_id)
            await recorder.delivered(
                work.delivery,
                note_id=None if result is None else result.id,
                note_error=None if result is not None else "amoCRM's answer did not list the note",
                attempt=(started, ms, None),
                lead_id=work.lead_id,
            )
        pending = {}
