"""The events the sandbox announces, as amoCRM's webhooks describe entities (amocrm-api.md §4.11).

Which change sends what (only to webhooks subscribed to the code):
- a lead created (`POST /api/v4/leads`, `leads/complex`, `leads/unsorted/forms`) → `add_lead`;
- a lead changed by `PATCH` → `update_lead`; when its status or pipeline changed also
  `status_lead` (with `old_status_id`, and `old_pipeline_id` when the pipeline changed); when its
  responsible user changed also `responsible_lead` (with `old_responsible_user_id`);
- an unsorted item accepted → `status_lead` + `update_lead` for its lead (it leaves the Unsorted
  stage) and `add_contact` for its contact, which only now becomes visible (assumption: amoCRM
  announces a hidden contact when it appears in lists);
- a contact created visible (`POST /api/v4/contacts`, a new contact in `leads/complex`) →
  `add_contact`; a contact changed by `PATCH` → `update_contact`;
- a note on a lead or contact → `note_lead` / `note_contact`, shaped
  `leads[note][0][note][...]` with `element_id`, `element_type` (2 lead, 1 contact) and a
  numeric `note_type` (4 = common), as captured amoCRM posts show.
Item fields: `id, name, status_id, price, responsible_user_id, last_modified,
modified_user_id, created_user_id, date_create, pipeline_id, account_id, created_at,
updated_at, custom_fields[{id, name, code?, values[{value, enum?}]}], tags[{id, name}]` for
leads; contacts carry `type=contact`, `first_name`, `last_name` and `linked_leads_id`. Every
value is text, as amoCRM sends it; date fields are bare values (`values[0]=1729717200`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amogate.amocrm.sandbox.entities import Contact, Lead, Note
from amogate.amocrm.sandbox.seed import ADMIN_USER_ID
from amogate.amocrm.sandbox.state import SandboxState
from amogate.amocrm.webhook_format import WebhookEvent

JSON = dict[str, Any]
DATE_TYPES = frozenset({"date", "date_time", "birthday"})
# amoCRM's numeric note types and element types in webhooks (API v2 numbering).
NOTE_TYPE_CODES = {
    "common": 4,
    "call_in": 10,
    "call_out": 11,
    "service_message": 25,
    "extended_service_message": 25,
    "sms_in": 102,
    "sms_out": 103,
}
ELEMENT_TYPES = {"contacts": 1, "leads": 2, "companies": 3}


@dataclass(frozen=True)
class LeadBefore:
    """What a lead looked like before a change, for `status_lead`/`responsible_lead`."""

    status_id: int
    pipeline_id: int
    responsible_user_id: int

    @classmethod
    def of(cls, lead: Lead) -> LeadBefore:
        return cls(lead.status_id, lead.pipeline_id, lead.responsible_user_id)


def lead_added(state: SandboxState, lead: Lead) -> None:
    state.announce("add_lead", WebhookEvent("lead", "add", lead_item(state, lead)))


def lead_changed(state: SandboxState, lead: Lead, before: LeadBefore) -> None:
    item = lead_item(state, lead)
    state.announce("update_lead", WebhookEvent("lead", "update", item))
    if (lead.status_id, lead.pipeline_id) != (before.status_id, before.pipeline_id):
        moved = {**item, "old_status_id": str(before.status_id)}
        if lead.pipeline_id != before.pipeline_id:
            moved["old_pipeline_id"] = str(before.pipeline_id)
        state.announce("status_lead", WebhookEvent("lead", "status", moved))
    if lead.responsible_user_id != before.responsible_user_id:
        handed = {**item, "old_responsible_user_id": str(before.responsible_user_id)}
        state.announce("responsible_lead", WebhookEvent("lead", "responsible", handed))


def contact_added(state: SandboxState, contact: Contact) -> None:
    state.announce("add_contact", WebhookEvent("contact", "add", contact_item(state, contact)))


def contact_changed(state: SandboxState, contact: Contact) -> None:
    state.announce(
        "update_contact", WebhookEvent("contact", "update", contact_item(state, contact))
    )


def note_added(state: SandboxState, note: Note) -> None:
    entity = "lead" if note.entity_type == "leads" else "contact"
    state.announce(f"note_{entity}", WebhookEvent(entity, "note", {"note": note_item(state, note)}))


def lead_item(state: SandboxState, lead: Lead) -> JSON:
    item: JSON = {
        "id": str(lead.id),
        "name": lead.name,
        "status_id": str(lead.status_id),
        "price": str(lead.price),
        "responsible_user_id": str(lead.responsible_user_id),
        "last_modified": str(lead.updated_at),
        "modified_user_id": str(ADMIN_USER_ID),
        "created_user_id": str(lead.created_by),
        "date_create": str(lead.created_at),
        "pipeline_id": str(lead.pipeline_id),
        "account_id": str(state.account_id),
        "created_at": str(lead.created_at),
        "updated_at": str(lead.updated_at),
    }
    fields = custom_fields(lead.custom_fields_values)
    if fields:
        item["custom_fields"] = fields
    tags = [state.tags["leads"][t] for t in lead.tag_ids]
    if tags:
        item["tags"] = [{"id": str(t.id), "name": t.name} for t in tags]
    return item


def contact_item(state: SandboxState, contact: Contact) -> JSON:
    item: JSON = {
        "id": str(contact.id),
        "name": contact.name,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "responsible_user_id": str(contact.responsible_user_id),
        "date_create": str(contact.created_at),
        "last_modified": str(contact.updated_at),
        "created_user_id": str(contact.created_by),
        "modified_user_id": str(ADMIN_USER_ID),
        "account_id": str(state.account_id),
        "created_at": str(contact.created_at),
        "updated_at": str(contact.updated_at),
        "type": "contact",
    }
    fields = custom_fields(contact.custom_fields_values)
    if fields:
        item["custom_fields"] = fields
    leads = [
        lead.id
        for lead in state.leads.values()
        if contact.id in lead.contact_ids and not lead.is_deleted
    ]
    if leads:
        item["linked_leads_id"] = {str(i): str(i) for i in leads}
    return item


def note_item(state: SandboxState, note: Note) -> JSON:
    return {
        "id": str(note.id),
        "element_id": str(note.entity_id),
        "element_type": str(ELEMENT_TYPES[note.entity_type]),
        "note_type": str(NOTE_TYPE_CODES.get(note.note_type, 4)),
        "text": str(note.params.get("text", "")),
        "created_by": str(note.created_by),
        "responsible_user_id": str(note.responsible_user_id),
        "date_create": str(note.created_at),
        "last_modified": str(note.updated_at),
        "account_id": str(state.account_id),
    }


def custom_fields(values: list[JSON] | None) -> list[JSON]:
    """Stored `custom_fields_values` in the webhook shape, every value as text."""
    fields: list[JSON] = []
    for stored in values or []:
        entry: JSON = {"id": str(stored["field_id"]), "name": stored["field_name"]}
        if stored.get("field_code"):
            entry["code"] = stored["field_code"]
        if stored["field_type"] in DATE_TYPES:
            entry["values"] = [_text(v.get("value")) for v in stored["values"]]
        else:
            entry["values"] = [_value(v) for v in stored["values"]]
        fields.append(entry)
    return fields


def _value(stored: JSON) -> JSON:
    value: JSON = {"value": _text(stored.get("value"))}
    if stored.get("enum_id") is not None:
        value["enum"] = str(stored["enum_id"])
    return value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return "" if value is None else str(value)
