"""Direct mode (``"mode": "lead"``): the amoCRM side of sending a lead straight into its
pipeline stage with ``POST /api/v4/leads/complex`` (the items are built by
``leads.complex_item``).

* ``delivery_field``: the account's ``AMOGATE_DELIVERY_ID`` lead field, created once when
  missing (read fresh first, so two workers rarely both create it);
* ``sent``: amoCRM's complex answer in the shape the worker records for unsorted items (no
  ``uid``: a direct lead has no unsorted item);
* ``find_sent``: after a send whose answer was lost, the leads that did reach amoCRM, found by
  the delivery id they carry (recent leads, newest first), so none is created twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from amogate.amocrm.client import AmoClient
from amogate.amocrm.models import ComplexResult, UnsortedResult
from amogate.leads.complex_item import (
    DELIVERY_FIELD_CODE,
    delivery_field_request,
    delivery_id_of,
)

JSON = dict[str, Any]
MODE_LEAD = "lead"
PAGE = 250
MAX_PAGES = 20
MARGIN = 300  # seconds before the lead was received (clock skew between hosts)


def is_direct(payload: Mapping[str, Any]) -> bool:
    return payload.get("mode") == MODE_LEAD


async def delivery_field(client: AmoClient) -> JSON:
    """The delivery id lead field, created when the account has none."""
    for existing in await client.list_custom_fields("leads"):
        if existing.get("code") == DELIVERY_FIELD_CODE:
            return existing
    [created] = await client.create_custom_fields("leads", delivery_field_request())
    return {"code": DELIVERY_FIELD_CODE, **created}


def sent(result: ComplexResult) -> UnsortedResult:
    request_id = result.request_ids[0] if result.request_ids else None
    return UnsortedResult(request_id, "", result.lead_id, result.contact_id)


async def find_sent(client: AmoClient, wanted: Mapping[str, datetime]) -> dict[str, UnsortedResult]:
    """Delivery id → the lead amoCRM holds for it, for the deliveries (id → when received)
    whose direct send has an unknown outcome."""
    since = int(min(wanted.values()).timestamp()) - MARGIN
    found: dict[str, UnsortedResult] = {}
    for page in range(1, MAX_PAGES + 1):
        leads = await client.list_leads(
            page=page,
            limit=PAGE,
            with_=("contacts",),
            order={"created_at": "desc"},
            created_at={"from": since},
        )
        for lead in leads:
            delivery_id = delivery_id_of(lead)
            if delivery_id is not None and delivery_id in wanted and delivery_id not in found:
                found[delivery_id] = UnsortedResult(
                    delivery_id, "", int(lead["id"]), _contact_of(lead)
                )
        if len(leads) < PAGE or len(found) == len(wanted):
            break
    return found


def _contact_of(lead: Mapping[str, Any]) -> int | None:
    contacts: Sequence[Any] = (lead.get("_embedded") or {}).get("contacts") or []
    for contact in contacts:
        if isinstance(contact, Mapping) and contact.get("id") is not None:
            return int(contact["id"])
    return None
