"""Checking and applying `PATCH` changes to leads and contacts (amocrm-api.md §4.0, §4.4, §4.6).

Like creation, every item of a request is checked first and nothing is changed unless all
pass. Fields left out stay as they are.
- Leads: `name`, `price`, `status_id`, `pipeline_id`, `responsible_user_id`,
  `custom_fields_values`, `_embedded.tags` (replaces the tag set), `tags_to_add`,
  `tags_to_delete`. Placement follows amoCRM: a status of the lead's pipeline (or 142/143)
  keeps the pipeline; a status of another pipeline moves the lead there; `pipeline_id` alone
  puts it in that pipeline's first stage (assumption); both must belong together. The Unsorted
  stage cannot be set, and a lead still waiting in Unsorted cannot be moved before its item is
  accepted (assumption) → `NotSupportedChoice` on `status_id`. Entering 142/143 sets
  `closed_at`, leaving them clears it.
- Contacts: `name`, `first_name`, `last_name`, `responsible_user_id`, `custom_fields_values`,
  `_embedded.tags`, `tags_to_add`, `tags_to_delete`.
- `custom_fields_values` (amoCRM's rule): each field given REPLACES that field's values with
  the given list, `"values": null` clears the field, fields not given are untouched. So adding a
  phone to a contact means sending its current phones plus the new one.
- Unknown, deleted or missing `id` → `NotSupportedChoice` / `FieldMissing` on `id` (the
  sandbox's choice among amoCRM's error shapes; amoCRM's exact answer is not documented).
A change that changes nothing leaves `updated_at` alone and announces nothing; otherwise
`updated_at` becomes now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from amogate.amocrm.sandbox.drafts import first_stage
from amogate.amocrm.sandbox.entities import Contact, Lead
from amogate.amocrm.sandbox.seed import LOST_STATUS_ID, WON_STATUS_ID
from amogate.amocrm.sandbox.state import SandboxState
from amogate.amocrm.sandbox.validation import ItemErrors
from amogate.amocrm.sandbox.values import TagSpec, check_tags, custom_field_values, resolve_tags

JSON = dict[str, Any]
CLOSED = (WON_STATUS_ID, LOST_STATUS_ID)


@dataclass
class FieldChange:
    given: list[JSON]
    cleared: set[int]


@dataclass
class TagChange:
    replace: list[TagSpec] | None = None
    add: list[TagSpec] = field(default_factory=list)
    delete: list[TagSpec] = field(default_factory=list)


@dataclass
class LeadChange:
    lead: Lead
    values: JSON
    placement: tuple[int, int] | None
    fields: FieldChange | None
    tags: TagChange


@dataclass
class ContactChange:
    contact: Contact
    values: JSON
    fields: FieldChange | None
    tags: TagChange


def lead_change(
    state: SandboxState, raw: JSON, errors: ItemErrors, lead_id: Any
) -> LeadChange | None:
    lead = _existing(state.leads, lead_id, errors)
    values: JSON = {}
    _text(raw, "name", values, errors)
    _number(raw, "price", values, errors)
    _responsible(state, raw, values, errors)
    placement = None if lead is None else _placement(state, lead, raw, errors)
    fields = _fields(state, "leads", raw, errors)
    tags = _tags(state, "leads", raw, errors)
    if lead is None or errors.errors:
        return None
    return LeadChange(lead, values, placement, fields, tags)


def contact_change(
    state: SandboxState, raw: JSON, errors: ItemErrors, contact_id: Any
) -> ContactChange | None:
    contact = _existing(state.contacts, contact_id, errors)
    values: JSON = {}
    for key in ("name", "first_name", "last_name"):
        _text(raw, key, values, errors)
    _responsible(state, raw, values, errors)
    fields = _fields(state, "contacts", raw, errors)
    tags = _tags(state, "contacts", raw, errors)
    if contact is None or errors.errors:
        return None
    return ContactChange(contact, values, fields, tags)


def apply_lead(state: SandboxState, change: LeadChange) -> bool:
    """Apply a checked change; whether anything changed."""
    lead = change.lead
    before = _lead_snapshot(lead)
    for key, value in change.values.items():
        setattr(lead, key, value)
    if change.placement is not None:
        lead.pipeline_id, lead.status_id = change.placement
    if change.fields is not None:
        lead.custom_fields_values = merge_fields(lead.custom_fields_values, change.fields)
    lead.tag_ids = _apply_tags(state, "leads", lead.tag_ids, change.tags)
    if _lead_snapshot(lead) == before:
        return False
    if lead.status_id != before[3]:
        lead.closed_at = state.now() if lead.status_id in CLOSED else None
    lead.updated_at = state.now()
    return True


def apply_contact(state: SandboxState, change: ContactChange) -> bool:
    contact = change.contact
    before = _contact_snapshot(contact)
    for key, value in change.values.items():
        setattr(contact, key, value)
    if change.fields is not None:
        contact.custom_fields_values = merge_fields(contact.custom_fields_values, change.fields)
    contact.tag_ids = _apply_tags(state, "contacts", contact.tag_ids, change.tags)
    if _contact_snapshot(contact) == before:
        return False
    contact.updated_at = state.now()
    return True


def merge_fields(stored: list[JSON] | None, change: FieldChange) -> list[JSON] | None:
    """`stored` with each given field's values replaced (in place) and cleared ones removed."""
    given = {entry["field_id"]: entry for entry in change.given}
    merged: list[JSON] = []
    for entry in stored or []:
        field_id = entry["field_id"]
        if field_id in given:
            merged.append(given.pop(field_id))
        elif field_id not in change.cleared:
            merged.append(entry)
    merged.extend(given.values())
    return merged or None


def _existing(store: dict[int, Any], entity_id: Any, errors: ItemErrors) -> Any:
    if entity_id is None:
        errors.missing("id")
        return None
    if isinstance(entity_id, bool) or not isinstance(entity_id, int):
        errors.invalid_type("id", "int")
        return None
    found = store.get(entity_id)
    if found is None or found.is_deleted:
        errors.bad_choice("id")
        return None
    return found


def _text(raw: JSON, key: str, values: JSON, errors: ItemErrors) -> None:
    if key not in raw:
        return
    if not isinstance(raw[key], str):
        errors.invalid_type(key, "string")
        return
    values[key] = raw[key]


def _number(raw: JSON, key: str, values: JSON, errors: ItemErrors) -> None:
    if key not in raw:
        return
    if isinstance(raw[key], bool) or not isinstance(raw[key], int):
        errors.invalid_type(key, "int")
        return
    values[key] = raw[key]


def _responsible(state: SandboxState, raw: JSON, values: JSON, errors: ItemErrors) -> None:
    if raw.get("responsible_user_id") is None:
        return
    user_id = raw["responsible_user_id"]
    if isinstance(user_id, bool) or user_id not in state.user_ids():
        errors.bad_choice("responsible_user_id")
        return
    values["responsible_user_id"] = user_id


def _placement(
    state: SandboxState, lead: Lead, raw: JSON, errors: ItemErrors
) -> tuple[int, int] | None:
    """The (pipeline_id, status_id) the lead moves to; None when neither is given."""
    pipeline_raw, status_raw = raw.get("pipeline_id"), raw.get("status_id")
    if pipeline_raw is None and status_raw is None:
        return None
    for key, value in (("pipeline_id", pipeline_raw), ("status_id", status_raw)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            errors.invalid_type(key, "int")
            return None
    if _waiting_in_unsorted(state, lead):
        errors.bad_choice("status_id")
        return None
    current = state.pipeline(lead.pipeline_id)
    assert current is not None
    pipeline = current
    if pipeline_raw is not None:
        found = state.pipeline(pipeline_raw)
        if found is None:
            errors.bad_choice("pipeline_id")
            return None
        pipeline = found
        if status_raw is None:
            if pipeline["id"] == lead.pipeline_id:
                return lead.pipeline_id, lead.status_id
            return int(pipeline["id"]), first_stage(pipeline)
    elif not _has_status(current, status_raw) and status_raw not in CLOSED:
        # A status of another pipeline moves the lead there.
        owner = next((p for p in state.seed.pipelines if _has_status(p, status_raw)), None)
        pipeline = owner or current
    status = next((s for s in pipeline["_embedded"]["statuses"] if s["id"] == status_raw), None)
    if status is None or status["type"] == 1:
        errors.bad_choice("status_id")
        return None
    return int(pipeline["id"]), int(status["id"])


def _has_status(pipeline: JSON, status_id: Any) -> bool:
    return any(s["id"] == status_id for s in pipeline["_embedded"]["statuses"])


def _waiting_in_unsorted(state: SandboxState, lead: Lead) -> bool:
    return any(u.lead_id == lead.id and u.status == "new" for u in state.unsorted.values())


def _fields(
    state: SandboxState, entity_type: str, raw: JSON, errors: ItemErrors
) -> FieldChange | None:
    given = raw.get("custom_fields_values")
    if given is None:
        return None
    checked = custom_field_values(state, entity_type, given, errors, "custom_fields_values")
    cleared: set[int] = set()
    for entry in given if isinstance(given, list) else []:
        if isinstance(entry, dict) and "values" in entry and entry["values"] is None:
            found = _field_of(state, entity_type, entry)
            if found is not None:
                cleared.add(int(found["id"]))
    return FieldChange(checked or [], cleared)


def _field_of(state: SandboxState, entity_type: str, entry: JSON) -> JSON | None:
    if isinstance(entry.get("field_id"), int):
        return state.field_by_id(entity_type, entry["field_id"])
    if isinstance(entry.get("field_code"), str):
        return state.field_by_code(entity_type, entry["field_code"])
    return None


def _tags(state: SandboxState, entity_type: str, raw: JSON, errors: ItemErrors) -> TagChange:
    change = TagChange()
    embedded = raw.get("_embedded")
    if isinstance(embedded, dict) and "tags" in embedded:
        change.replace = check_tags(state, entity_type, embedded["tags"], errors, "_embedded.tags")
    change.add = check_tags(state, entity_type, raw.get("tags_to_add"), errors, "tags_to_add")
    change.delete = check_tags(
        state, entity_type, raw.get("tags_to_delete"), errors, "tags_to_delete"
    )
    return change


def _apply_tags(
    state: SandboxState, entity_type: str, current: list[int], change: TagChange
) -> list[int]:
    tag_ids = list(current)
    if change.replace is not None:
        tag_ids = resolve_tags(state, entity_type, change.replace)
    tag_ids += [t for t in resolve_tags(state, entity_type, change.add) if t not in tag_ids]
    known = state.tags[entity_type]
    removed = {
        spec if isinstance(spec, int) else next((t.id for t in known.values() if t.name == spec), 0)
        for spec in change.delete
    }
    return [t for t in tag_ids if t not in removed]


def _lead_snapshot(lead: Lead) -> tuple[Any, ...]:
    return (
        lead.name,
        lead.price,
        lead.pipeline_id,
        lead.status_id,
        lead.responsible_user_id,
        lead.custom_fields_values,
        list(lead.tag_ids),
    )


def _contact_snapshot(contact: Contact) -> tuple[Any, ...]:
    return (
        contact.name,
        contact.first_name,
        contact.last_name,
        contact.responsible_user_id,
        contact.custom_fields_values,
        list(contact.tag_ids),
    )
