"""A lead straight into a pipeline stage: one ``POST /api/v4/leads/complex`` item — pure.

Direct mode (``"mode": "lead"``) skips Unsorted. The item is the lead itself (name, price,
``pipeline_id``/``status_id``, responsible user, custom and tracking fields, tags, built by the
same ``mapping`` parts as the unsorted form) with one contact: a new one, or ``{"id": N}`` when
matching found the person's contact. It carries no ``_embedded.metadata``: with metadata amoCRM
(and the sandbox) routes a complex lead through Unsorted (amocrm-api.md §4.7), which is what
direct mode avoids. The form's details still reach the manager in the lead's note
(``mapping.lead_note``), and the form page fills the ``REFERRER`` tracking field, as amoCRM
does itself for a form that goes through Unsorted (§4.5).

Finding the lead again. amoCRM keeps no per-lead external id (``request_id`` is only echoed
and ``_embedded.source`` names a channel, not a lead), so the delivery id is written into a
lead text field with code ``AMOGATE_DELIVERY_ID``. After a send whose outcome is unknown, the
worker reads recent leads (``filter[created_at][from]`` = when the lead was received, newest
first — that covers both amoCRM honouring the item's ``created_at`` and ignoring it) and
``find_by_delivery_id`` picks the one carrying it; no second lead is created. The field is
created once per account (``delivery_field_request``) as ``is_api_only``: managers do not see
it. ``complex_item`` refuses to build an item for an account without the field, so no direct
lead is ever sent that could not be found again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from amogate.amocrm.errors import FieldError
from amogate.amocrm.limits import value_max
from amogate.leads.mapping import (
    JSON,
    AccountFields,
    FormItem,
    contact_part,
    lead_part,
    linked_contact_remarks,
)

DELIVERY_FIELD_CODE = "AMOGATE_DELIVERY_ID"
DELIVERY_FIELD_NAME = "amogate delivery id"
REFERRER_CODE = "REFERRER"
CONTACT_PATH = "_embedded.contacts.0"
# Paths of a complex item that always come from the same payload keys (cf. refusals._FIXED).
_FIXED: dict[str, tuple[str, ...]] = {
    "pipeline_id": ("pipeline_id",),
    "price": ("lead", "price"),
    "status_id": ("lead", "status_id"),
    "responsible_user_id": ("lead", "responsible_user_id"),
    f"{CONTACT_PATH}.responsible_user_id": ("lead", "responsible_user_id"),
    f"{CONTACT_PATH}.first_name": ("contact", "first_name"),
    f"{CONTACT_PATH}.last_name": ("contact", "last_name"),
}


class DeliveryFieldMissing(ValueError):
    """The account has no ``AMOGATE_DELIVERY_ID`` lead field (or its field list is unknown)."""


@dataclass
class ComplexItem(FormItem):
    """A complex lead item; ``delivery_path`` is where the delivery id value sits in it."""

    delivery_path: str = ""


def complex_item(
    payload: Mapping[str, Any],
    fields: AccountFields,
    *,
    delivery_id: str,
    created_at: int,
    contact_id: int | None = None,
) -> ComplexItem:
    """The item for ``payload``; ``contact_id`` links that existing contact instead of
    creating one. ``request_id`` is the delivery id, ``created_at`` when the lead arrived."""
    if not has_delivery_field(fields):
        raise DeliveryFieldMissing(
            f"the account has no lead field {DELIVERY_FIELD_CODE}; create it first"
        )
    built = ComplexItem({})
    lead = lead_part(payload, fields, built, "")
    values: list[JSON] = lead.setdefault("custom_fields_values", [])
    page = payload.get("form_page")
    limit = value_max("tracking_data") or 0
    if page and len(page) <= limit and _has_code(fields.lead, REFERRER_CODE):
        # A longer address would be refused by amoCRM; the note shows it in full anyway.
        built.origins[f"custom_fields_values.{len(values)}"] = ("form_page",)
        values.append({"field_code": REFERRER_CODE, "values": [{"value": page}]})
    built.delivery_path = f"custom_fields_values.{len(values)}"
    values.append({"field_code": DELIVERY_FIELD_CODE, "values": [{"value": delivery_id}]})
    if contact_id is None:
        contact = contact_part(payload, fields, built, CONTACT_PATH)
    else:
        contact = {"id": int(contact_id)}
        built.remarks += linked_contact_remarks(payload["contact"], contact_id)
    lead.setdefault("_embedded", {})["contacts"] = [contact]
    item: JSON = {**lead, "created_at": created_at, "request_id": delivery_id}
    if payload.get("pipeline_id") is not None:
        item["pipeline_id"] = payload["pipeline_id"]
    for path, keys in _FIXED.items():
        if _present(item, path):
            built.origins[path] = keys
    built.whole = {"name": "lead.name", f"{CONTACT_PATH}.id": "contact"}
    built.item = item
    return built


def _present(item: Mapping[str, Any], path: str) -> bool:
    holder: Any = item
    for part in path.split("."):
        if isinstance(holder, list) and part.isdigit() and int(part) < len(holder):
            holder = holder[int(part)]
        elif isinstance(holder, Mapping) and part in holder:
            holder = holder[part]
        else:
            return False
    return holder is not None


# --- the delivery id field ------------------------------------------------------------------


def has_delivery_field(fields: AccountFields) -> bool:
    return _has_code(fields.lead, DELIVERY_FIELD_CODE)


def delivery_field_request() -> list[JSON]:
    """The ``POST /api/v4/leads/custom_fields`` body creating the delivery id field: text,
    written and read by the API only (hidden from managers)."""
    return [
        {
            "name": DELIVERY_FIELD_NAME,
            "type": "text",
            "code": DELIVERY_FIELD_CODE,
            "is_api_only": True,
        }
    ]


def delivery_id_of(lead: Mapping[str, Any]) -> str | None:
    """The delivery id a lead read from amoCRM carries, if any."""
    for entry in lead.get("custom_fields_values") or []:
        if isinstance(entry, Mapping) and entry.get("field_code") == DELIVERY_FIELD_CODE:
            for value in entry.get("values") or []:
                if isinstance(value, Mapping) and value.get("value"):
                    return str(value["value"])
    return None


def find_by_delivery_id(leads: Iterable[Mapping[str, Any]], delivery_id: str) -> JSON | None:
    """The lead of a page (as ``list_leads`` returns it) that carries ``delivery_id``; the
    newest one should amoCRM somehow hold two."""
    found = [dict(lead) for lead in leads if delivery_id_of(lead) == delivery_id]
    if not found:
        return None
    return max(found, key=lambda lead: (int(lead.get("created_at") or 0), int(lead["id"])))


# --- amoCRM's refusals specific to complex ----------------------------------------------------


def linked_contact_refused(errors: Sequence[FieldError]) -> bool:
    """amoCRM refused the linked contact id (deleted, merged, or its unsorted item declined):
    forget the link and send the lead again with a new contact."""
    return any(e.path == f"{CONTACT_PATH}.id" for e in errors)


def delivery_field_refused(built: ComplexItem, errors: Sequence[FieldError]) -> bool:
    """amoCRM refused the delivery id value (the field was deleted since the field list was
    read): create the field again before sending."""
    at = built.delivery_path
    return any(e.path == at or e.path.startswith(f"{at}.") for e in errors)


def _has_code(fields: Sequence[Mapping[str, Any]], code: str) -> bool:
    return any(str(f.get("code") or "") == code for f in fields)
