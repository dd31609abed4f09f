"""From our lead request to amoCRM's shapes (amocrm-api.md §4.4, §4.5, §4.8, §4.9) — pure.

Three steps, each a plain function of its inputs:

* ``stored_payload(lead, region)``: the validated request as JSON for the ``deliveries`` row,
  phones already in E.164. This is what survives restarts.
* ``form_item(payload, fields, delivery_id, created_at)``: one ``POST /leads/unsorted/forms``
  item and its remarks. Custom fields named by code/name and options named by label are
  resolved against the account's field lists here; a field or option the account does not have
  is left out of the item and becomes a remark (the value goes to the note), and a text longer
  than its field takes is cut to amoCRM's limit (the full text goes to the note). UTM values go
  to the lead's tracking fields the account has; other codes are dropped.
* ``lead_note(payload, lead_id, request_id)``: the one common note for the sales manager with
  the comment, every UTM pair, the form details, the keys amogate does not know and every value
  that was not used as sent (the payload's ``remarks``), as the caller typed it.

``our_path(payload, amo_path)`` turns a path inside an amoCRM item (from its validation errors)
back into the caller's dotted path, so a 422 points at the field the caller sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from amogate.amocrm.limits import value_max
from amogate.leads.phones import normalize_phone
from amogate.leads.reading import shown
from amogate.leads.schemas import CustomFieldIn, LeadRequest, Remark

JSON = dict[str, Any]
DEFAULT_SOURCE = "amogate"
DEFAULT_FORM_NAME = "Website form"
# Our UTM keys and the amoCRM tracking field codes they fill (amocrm-api.md §4.5).
UTM_TRACKING_CODES = {
    "utm_source": "UTM_SOURCE",
    "utm_medium": "UTM_MEDIUM",
    "utm_campaign": "UTM_CAMPAIGN",
    "utm_content": "UTM_CONTENT",
    "utm_term": "UTM_TERM",
}
NAME_REFERENCES = ("field_code", "field_name", "enum", "enums")


@dataclass(frozen=True)
class AccountFields:
    """The account's custom fields (amoCRM field dicts: id, name, code, type, enums)."""

    lead: Sequence[Mapping[str, Any]]
    contact: Sequence[Mapping[str, Any]]


UNKNOWN_FIELD = "amoCRM has no field {reference}; kept in the note"
UNKNOWN_OPTION = "field {name!r} has no option {label!r}; kept in the note"
VALUE_CUT = (
    "longer than field {name!r} takes ({limit} characters); cut, the full text is in the note"
)


Keys = tuple[str | int, ...]


@dataclass
class FormItem:
    """One item for amoCRM (an unsorted form, or a complex lead: ``leads.complex_item``), the
    remarks building it gave (see `form_item`), and where each custom field value and tag in
    it came from: a path inside the item (``_embedded.leads.0.custom_fields_values.2``) -> the
    keys of the payload it was built from (``("lead", "custom_fields", 1)``), so amoCRM's
    complaints can be traced back (`refusals`). ``whole`` names paths of this item that stand
    for a part that cannot be left out (path -> the caller's dotted path), beyond those every
    form item has."""

    item: JSON
    remarks: list[JSON] = field(default_factory=list)
    origins: dict[str, Keys] = field(default_factory=dict)
    whole: dict[str, str] = field(default_factory=dict)


def remark(field_path: str, problem: str, value: Any) -> JSON:
    return Remark(field=field_path, problem=problem, value=value).model_dump(exclude_none=True)


def add_remarks(payload: Mapping[str, Any], remarks: Sequence[Mapping[str, Any]]) -> JSON:
    """The payload with `remarks` added to its own (each field/problem pair once)."""
    kept: list[JSON] = list(payload.get("remarks") or [])
    seen = {(r.get("field"), r.get("problem")) for r in kept}
    for item in remarks:
        key = (item.get("field"), item.get("problem"))
        if key not in seen:
            seen.add(key)
            kept.append(dict(item))
    return {**payload, "remarks": kept}


# --- the stored payload ----------------------------------------------------------------------


def stored_payload(lead: LeadRequest, region: str) -> JSON:
    """The request as it is kept in the queue: JSON, phones normalised, defaults filled."""
    data = lead.model_dump(mode="json", exclude_none=True)
    contact = data["contact"]
    phones: list[JSON] = []
    if lead.contact.phone:
        phones.append({"value": normalize_phone(lead.contact.phone, region), "type": "WORK"})
    for phone in lead.contact.phones:
        phones.append({"value": normalize_phone(phone.value, region), "type": phone.type})
    emails: list[JSON] = []
    if lead.contact.email:
        emails.append({"value": lead.contact.email, "type": "WORK"})
    emails += [{"value": e.value, "type": e.type} for e in lead.contact.emails]
    contact.pop("phone", None)
    contact.pop("email", None)
    contact["phones"] = _unique_values(phones)
    contact["emails"] = _unique_values(emails)
    data["source"] = lead.source or DEFAULT_SOURCE
    return data


def uses_names(payload: Mapping[str, Any]) -> bool:
    """Whether resolving the payload needs the account's field lists for names or labels."""
    entries = [
        *payload["lead"].get("custom_fields", []),
        *payload["contact"].get("custom_fields", []),
    ]
    return any(entry.get(key) for entry in entries for key in NAME_REFERENCES)


def _unique_values(items: list[JSON]) -> list[JSON]:
    seen: set[str] = set()
    unique = []
    for item in items:
        key = str(item["value"]).lower()
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique


# --- the unsorted form item ------------------------------------------------------------------


def form_item(
    payload: Mapping[str, Any],
    fields: AccountFields,
    *,
    delivery_id: str,
    created_at: int,
    contact_id: int | None = None,
) -> FormItem:
    """One ``POST /api/v4/leads/unsorted/forms`` item; ``request_id`` and ``source_uid`` are the
    delivery id, so results match and a re-sent form is recognisable. ``contact_id`` links
    that existing contact instead of creating one."""
    built = FormItem({})
    lead = lead_part(payload, fields, built, "_embedded.leads.0")
    if payload.get("visitor_uid"):
        lead["visitor_uid"] = payload["visitor_uid"]
    if contact_id is None:
        contact = contact_part(payload, fields, built, "_embedded.contacts.0")
    else:
        contact = {"id": int(contact_id)}
        built.remarks += linked_contact_remarks(payload["contact"], contact_id)
        built.whole["_embedded.contacts.0.id"] = "contact"
    item: JSON = {
        "request_id": delivery_id,
        "source_name": payload.get("source") or DEFAULT_SOURCE,
        "source_uid": delivery_id,
        "created_at": created_at,
        "metadata": form_metadata(payload, created_at),
        "_embedded": {"leads": [lead], "contacts": [contact]},
    }
    if payload.get("pipeline_id") is not None:
        item["pipeline_id"] = payload["pipeline_id"]
    built.item = item
    return built


def lead_part(payload: Mapping[str, Any], fields: AccountFields, built: FormItem, at: str) -> JSON:
    """The lead of an item, found at path ``at`` inside it (``""``: the item is the lead):
    name, price, placement, responsible user, custom and tracking fields, tags. Remarks and
    the origins of its values go into ``built``."""
    lead_in: Mapping[str, Any] = payload["lead"]
    values: list[JSON] = []
    for position, value in resolve_custom_fields(
        lead_in.get("custom_fields", []), fields.lead, "lead.custom_fields", built.remarks
    ):
        built.origins[path_in(at, f"custom_fields_values.{len(values)}")] = (
            "lead",
            "custom_fields",
            position,
        )
        values.append(value)
    if payload.get("utm_tracking", True):
        for value in tracking_values(payload.get("utm", {}), fields.lead):
            built.origins[path_in(at, f"custom_fields_values.{len(values)}")] = ("utm",)
            values.append(value)
    lead: JSON = {"name": lead_in["name"]}
    for key in ("price", "status_id", "responsible_user_id"):
        if lead_in.get(key) is not None:
            lead[key] = lead_in[key]
    if values:
        lead["custom_fields_values"] = values
    tags = [_tag(tag) for tag in lead_in.get("tags", [])]
    if tags:
        lead["_embedded"] = {"tags": tags}
        for n in range(len(tags)):
            built.origins[path_in(at, f"_embedded.tags.{n}")] = ("lead", "tags", n)
    return lead


def contact_part(
    payload: Mapping[str, Any], fields: AccountFields, built: FormItem, at: str
) -> JSON:
    """A new contact for the lead's person at path ``at`` of the item: name, phones, emails,
    custom fields and the lead's responsible user."""
    contact_in: Mapping[str, Any] = payload["contact"]
    values = contact_channel_values(contact_in)
    for k, channel in enumerate(values):
        key = "phones" if channel["field_code"] == "PHONE" else "emails"
        for j in range(len(channel["values"])):
            built.origins[path_in(at, f"custom_fields_values.{k}.values.{j}")] = (
                "contact",
                key,
                j,
            )
    for position, value in resolve_custom_fields(
        contact_in.get("custom_fields", []), fields.contact, "contact.custom_fields", built.remarks
    ):
        built.origins[path_in(at, f"custom_fields_values.{len(values)}")] = (
            "contact",
            "custom_fields",
            position,
        )
        values.append(value)
    contact: JSON = {"name": contact_name(contact_in)}
    for key in ("first_name", "last_name"):
        if contact_in.get(key):
            contact[key] = contact_in[key]
    responsible = payload["lead"].get("responsible_user_id")
    if responsible is not None:
        contact["responsible_user_id"] = responsible
    if values:
        contact["custom_fields_values"] = values
    return contact


LINKED_CONTACT_KEPT = (
    "the lead was linked to the existing contact {contact_id}, whose values are never"
    " overwritten; kept in the note"
)


def linked_contact_remarks(contact: Mapping[str, Any], contact_id: int) -> list[JSON]:
    """Remarks for what the lead said about its contact that an existing contact does not
    take (its name and custom fields; new phones/emails are added by a separate update)."""
    problem = LINKED_CONTACT_KEPT.format(contact_id=contact_id)
    remarks = [
        remark(f"contact.{key}", problem, contact[key])
        for key in ("name", "first_name", "last_name")
        if contact.get(key)
    ]
    for position, entry in enumerate(contact.get("custom_fields") or []):
        at = f"contact.custom_fields.{entry.get('index', position)}"
        remarks.append(remark(at, problem, shown_value(entry)))
    return remarks


def path_in(at: str, rest: str) -> str:
    """``rest`` as a path inside the part found at ``at`` of an item."""
    return f"{at}.{rest}" if at else rest


def form_metadata(payload: Mapping[str, Any], sent_at: int) -> JSON:
    """amoCRM wants form_id, form_name, form_page and form_sent_at on every item."""
    form_name = payload.get("form_name") or DEFAULT_FORM_NAME
    metadata: JSON = {
        "form_id": form_id(form_name),
        "form_name": form_name,
        "form_page": payload.get("form_page")
        or payload.get("referer")
        or payload.get("source")
        or DEFAULT_SOURCE,
        "form_sent_at": sent_at,
    }
    for key in ("ip", "referer", "visitor_uid"):
        if payload.get(key):
            metadata[key] = payload[key]
    return metadata


def form_id(form_name: str) -> str:
    """ "Contact Form" -> "contact_form"; names without Latin letters or digits keep a stable id."""
    slug = re.sub(r"[^0-9a-z]+", "_", form_name.lower()).strip("_")
    if slug:
        return slug[:64]
    return "form_" + format(sum(ord(ch) * (i + 1) for i, ch in enumerate(form_name)) % 10**8, "d")


def contact_name(contact: Mapping[str, Any]) -> str:
    """amoCRM shows a contact by its name; fall back to what the form gave."""
    if contact.get("name"):
        return str(contact["name"])
    parts = [contact.get("first_name"), contact.get("last_name")]
    joined = " ".join(str(p) for p in parts if p)
    if joined:
        return joined
    for key in ("phones", "emails"):
        if contact.get(key):
            return str(contact[key][0]["value"])
    return "—"


def contact_channel_values(contact: Mapping[str, Any]) -> list[JSON]:
    """PHONE and EMAIL multitext values with their kind as ``enum_code``."""
    values: list[JSON] = []
    for code, key in (("PHONE", "phones"), ("EMAIL", "emails")):
        items = contact.get(key) or []
        if items:
            values.append(
                {
                    "field_code": code,
                    "values": [{"value": i["value"], "enum_code": i["type"]} for i in items],
                }
            )
    return values


def tracking_values(utm: Mapping[str, str], lead_fields: Sequence[Mapping[str, Any]]) -> list[JSON]:
    """UTM pairs as tracking-field values, only for codes the account has."""
    codes = {str(f.get("code")) for f in lead_fields if f.get("code")}
    return [
        {"field_code": code, "values": [{"value": utm[key]}]}
        for key, code in UTM_TRACKING_CODES.items()
        if utm.get(key) and code in codes
    ]


def _tag(tag: Mapping[str, Any]) -> JSON:
    return {"id": tag["id"]} if tag.get("id") is not None else {"name": tag["name"]}


# --- custom fields ---------------------------------------------------------------------------


def resolve_custom_fields(
    entries: Sequence[Mapping[str, Any]],
    fields: Sequence[Mapping[str, Any]],
    path: str,
    remarks: list[JSON],
) -> list[tuple[int, JSON]]:
    """Our custom field entries as amoCRM ``custom_fields_values`` with each one's position in
    `entries`, for every entry that could be resolved; the others become `remarks`."""
    resolved: list[tuple[int, JSON]] = []
    for position, raw in enumerate(entries):
        entry = CustomFieldIn.model_validate(raw)
        at = f"{path}.{entry.index if entry.index is not None else position}"
        field = find_field(entry, fields)
        if field is None:
            if entry.field_id is not None and not fields:
                field = {"id": entry.field_id, "name": str(entry.field_id), "enums": []}
            else:
                problem = UNKNOWN_FIELD.format(reference=entry.reference)
                remarks.append(remark(at, problem, shown_value(raw)))
                continue
        values = field_values(entry, field, at, remarks)
        if values:
            resolved.append((position, {"field_id": int(field["id"]), "values": values}))
    return resolved


def shown_value(entry: Mapping[str, Any]) -> Any:
    """What the caller gave as the value(s) of a custom field entry, for the note."""
    keys = ("value", "values", "enum_id", "enum_ids", "enum", "enums")
    given = [entry[k] for k in keys if k in entry]
    flat: list[Any] = []
    for item in given:
        flat += item if isinstance(item, list) else [item]
    return flat[0] if len(flat) == 1 else flat


def find_field(
    entry: CustomFieldIn, fields: Sequence[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    if entry.field_id is not None:
        return next((f for f in fields if f.get("id") == entry.field_id), None)
    if entry.field_code:
        wanted = entry.field_code.casefold()
        return next((f for f in fields if str(f.get("code") or "").casefold() == wanted), None)
    assert entry.field_name is not None
    exact = [f for f in fields if f.get("name") == entry.field_name]
    if exact:
        return exact[0]
    wanted = entry.field_name.casefold()
    return next((f for f in fields if str(f.get("name") or "").casefold() == wanted), None)


def field_values(
    entry: CustomFieldIn, field: Mapping[str, Any], at: str, remarks: list[JSON]
) -> list[JSON]:
    name = field.get("name", field.get("id"))
    limit = value_max(str(field.get("type") or ""))
    values: list[JSON] = []
    for value in ([entry.value] if entry.value is not None else []) + list(entry.values or []):
        if limit is not None and isinstance(value, str) and len(value) > limit:
            remarks.append(remark(f"{at}.value", VALUE_CUT.format(name=name, limit=limit), value))
            value = value[:limit]
        values.append({"value": value})
    if entry.enum_id is not None:
        values.append({"enum_id": entry.enum_id})
    values += [{"enum_id": i} for i in entry.enum_ids or []]
    labels = ([entry.enum] if entry.enum is not None else []) + list(entry.enums or [])
    for label in labels:
        enum_id = find_enum(field, label)
        if enum_id is None:
            key = f"{at}.enum" if entry.enum == label else f"{at}.enums"
            remarks.append(remark(key, UNKNOWN_OPTION.format(name=name, label=label), label))
        else:
            values.append({"enum_id": enum_id})
    return values


def find_enum(field: Mapping[str, Any], label: str) -> int | None:
    enums: Sequence[Mapping[str, Any]] = field.get("enums") or []
    for match in (
        lambda e: e.get("value") == label,
        lambda e: str(e.get("value", "")).casefold() == label.casefold(),
    ):
        found = next((e for e in enums if match(e)), None)
        if found is not None:
            return int(found["id"])
    return None


# --- the note ----------------------------------------------------------------------------------


def note_text(payload: Mapping[str, Any]) -> str | None:
    """What the sales manager reads on the lead; None when the form said nothing more."""
    sections: list[str] = []
    if payload.get("comment"):
        sections.append(f"Comment:\n{payload['comment']}")
    utm: Mapping[str, str] = payload.get("utm") or {}
    if utm:
        sections.append("UTM:\n" + "\n".join(f"{k}: {v}" for k, v in utm.items()))
    form_lines = [
        f"{label}: {payload[key]}"
        for key, label in (
            ("form_name", "Form"),
            ("form_page", "Page"),
            ("referer", "Referer"),
            ("ip", "IP"),
            ("visitor_uid", "Visitor"),
        )
        if payload.get(key)
    ]
    if form_lines:
        sections.append("\n".join(form_lines))
    remarks: list[Mapping[str, Any]] = payload.get("remarks") or []
    extras = [f"{r['field']}: {shown(r.get('value'))}" for r in remarks if r.get("extra")]
    if extras:
        sections.append("Other fields:\n" + "\n".join(extras))
    flaws = [
        f"{r['field']}: {shown(r.get('value'))} ({r['problem']})"
        for r in remarks
        if not r.get("extra")
    ]
    if flaws:
        sections.append("Not used as sent:\n" + "\n".join(flaws))
    if not sections:
        return None
    return "\n\n".join(sections)


def lead_note(payload: Mapping[str, Any], lead_id: int, request_id: str) -> JSON | None:
    """The common note on the created lead (``POST /api/v4/leads/notes`` item)."""
    text = note_text(payload)
    if text is None:
        return None
    return {
        "entity_id": lead_id,
        "note_type": "common",
        "params": {"text": text},
        "request_id": request_id,
    }
