"""amoCRM's own refusal of values: which value of the stored payload each complaint names, and
the payload without them.

amoCRM answers a form it cannot take with 400 and per-field `validation-errors` whose paths are
inside the item (`_embedded.leads.0.custom_fields_values.2.values.0.value`, `pipeline_id`, ...).
`locate` turns such a path into the caller's dotted path and the payload keys the value came
from (through the item's `origins`, see `mapping.FormItem`). `without_refused` takes every named
value out of the payload and returns remarks holding each value with amoCRM's reason, so the
worker can send the lead again without them and the note still shows them. A complaint about
something that cannot be left out (the lead's name, the form's `source_uid`, an unknown path)
means amoCRM refuses the lead as a whole: `without_refused` returns None.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from amogate.amocrm.errors import FieldError
from amogate.leads.mapping import JSON, FormItem, Keys, remark, shown_value

REFUSED = "amoCRM refused it: {reasons}; the lead was sent without it"

# Paths of the item that always come from the same payload keys.
_FIXED: dict[str, Keys] = {
    "pipeline_id": ("pipeline_id",),
    "_embedded.leads.0.price": ("lead", "price"),
    "_embedded.leads.0.status_id": ("lead", "status_id"),
    "_embedded.leads.0.responsible_user_id": ("lead", "responsible_user_id"),
    "_embedded.leads.0.visitor_uid": ("visitor_uid",),
    "_embedded.contacts.0.responsible_user_id": ("lead", "responsible_user_id"),
    "_embedded.contacts.0.first_name": ("contact", "first_name"),
    "_embedded.contacts.0.last_name": ("contact", "last_name"),
    "metadata.ip": ("ip",),
    "metadata.referer": ("referer",),
    "metadata.visitor_uid": ("visitor_uid",),
    "metadata.form_name": ("form_name",),
    "metadata.form_page": ("form_page",),
}
# Paths that name a part of the lead without naming a value that could be left out.
_WHOLE: dict[str, str] = {
    "_embedded.leads.0.name": "lead.name",
    "_embedded.leads.0": "lead",
    "_embedded.contacts.0.name": "contact.name",
    "_embedded.contacts.0": "contact",
}


@dataclass(frozen=True)
class Location:
    field: str  # the caller's dotted path ("request" when nothing more precise is known)
    keys: Keys | None  # where the value sits in the payload; None: it cannot be left out


def locate(payload: Mapping[str, Any], built: FormItem, amo_path: str) -> Location:
    parts = amo_path.split(".") if amo_path else []
    for cut in range(len(parts), 0, -1):
        prefix = ".".join(parts[:cut])
        keys = built.origins.get(prefix) or _FIXED.get(prefix)
        if keys is not None:
            return Location(caller_path(payload, keys), keys)
        whole = built.whole.get(prefix) or _WHOLE.get(prefix)
        if whole is not None:
            return Location(whole, None)
    return Location("request", None)


def caller_path(payload: Mapping[str, Any], keys: Keys) -> str:
    """Payload keys as the dotted path the caller knows."""
    if keys[:2] in (("lead", "custom_fields"), ("contact", "custom_fields")) and len(keys) == 3:
        entry = payload[str(keys[0])]["custom_fields"][int(keys[2])]
        return f"{keys[0]}.custom_fields.{entry.get('index', keys[2])}"
    if keys[:2] in (("contact", "phones"), ("contact", "emails")):
        return f"contact.{keys[1]}"  # the caller may have sent it as contact.phone / .email
    return ".".join(str(k) for k in keys)


def field_errors(
    payload: Mapping[str, Any], built: FormItem, errors: list[FieldError]
) -> dict[str, Any]:
    """amoCRM's complaints about one item: by the caller's dotted paths, and as amoCRM said
    them (the delivery's `error_details`)."""
    fields: dict[str, str] = {}
    for error in errors:
        path = locate(payload, built, error.path).field
        text = _reason(error)
        fields[path] = f"{fields[path]}; {text}" if path in fields else text
    raw = [{"code": e.code, "path": e.path, "detail": e.detail} for e in errors]
    return {"fields": fields or {"request": "amoCRM rejected the lead"}, "amocrm": raw}


def without_refused(
    payload: Mapping[str, Any], built: FormItem, errors: list[FieldError]
) -> tuple[JSON, list[JSON]] | None:
    """The payload without every value amoCRM refused, and a remark for each (its value and
    amoCRM's reason); None when a complaint names something that cannot be left out."""
    if not errors:
        return None
    reasons: dict[Keys, list[str]] = {}
    places: dict[Keys, str] = {}
    for error in errors:
        where = locate(payload, built, error.path)
        if where.keys is None:
            return None
        reasons.setdefault(where.keys, []).append(_reason(error))
        places[where.keys] = where.field
    kept = copy.deepcopy(dict(payload))
    remarks: list[JSON] = []
    # Later list items first, so earlier positions stay valid while removing.
    for keys in sorted(reasons, key=_removal_order):
        value = _take(kept, keys)
        text = REFUSED.format(reasons="; ".join(dict.fromkeys(reasons[keys])))
        remarks.append(remark(places[keys], text, value))
    remarks.reverse()
    return kept, remarks


def _reason(error: FieldError) -> str:
    return f"{error.detail} ({error.code})" if error.code else error.detail


def _removal_order(keys: Keys) -> tuple[str, int]:
    position = keys[-1] if isinstance(keys[-1], int) else -1
    return (".".join(str(k) for k in keys[:-1]), -position)


def _take(payload: JSON, keys: Keys) -> Any:
    """Remove the value at `keys` from `payload`; what it was, as the caller gave it."""
    if keys == ("utm",):
        payload["utm_tracking"] = False  # the UTM pairs stay in the note
        return payload.get("utm")
    holder: Any = payload
    for key in keys[:-1]:
        holder = holder[key]
    last = keys[-1]
    if isinstance(last, int):
        value = holder.pop(last)
        if keys[:2] in (("lead", "custom_fields"), ("contact", "custom_fields")):
            return shown_value(value)
        if keys[:2] == ("lead", "tags"):
            return value.get("name", value.get("id"))
        return value.get("value") if isinstance(value, dict) else value
    return holder.pop(str(last), None)
