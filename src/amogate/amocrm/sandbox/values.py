"""`custom_fields_values` and `_embedded.tags` of written entities (amocrm-api.md §4.4, §4.6).

Each value is checked against the account's field list and stored in the read shape amoCRM
returns: `{field_id, field_name, field_code, field_type, values: [...]}`, enum values with
`enum_id` and `enum_code`. Fields are named by `field_id` or `field_code`; an unknown field,
an unknown enum (id, code or label) → `NotSupportedChoice`; a value of the wrong kind →
`InvalidType` (text in a numeric field, say); a text longer than its field takes
(`amogate.amocrm.limits`: 256 characters for text, url, address, tracking and phone/email
values) → `InvalidLength` with Symfony's "This value is too long..." detail, the validator
amoCRM's other details come from (the code name is our assumption). `"values": null` clears a
field. Dates accept unix seconds or RFC 3339 text and
are stored as unix seconds (assumption, amocrm-api.md §7.8).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from amogate.amocrm.limits import value_max
from amogate.amocrm.sandbox.state import SandboxState
from amogate.amocrm.sandbox.validation import ItemErrors

JSON = dict[str, Any]
SELECT_TYPES = frozenset({"select", "radiobutton", "multiselect", "category"})
DATE_TYPES = frozenset({"date", "date_time", "birthday"})
TEXT_TYPES = frozenset({"text", "textarea", "url", "tracking_data", "streetaddress"})


def custom_field_values(
    state: SandboxState, entity_type: str, raw: Any, errors: ItemErrors, path: str
) -> list[JSON] | None:
    """Validated values in read shape; None when nothing is set. Problems go to `errors`."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        errors.invalid_type(path, "array")
        return None
    stored: list[JSON] = []
    for i, entry in enumerate(raw):
        at = f"{path}.{i}"
        if not isinstance(entry, dict):
            errors.invalid_type(at, "array")
            continue
        found = _field(state, entity_type, entry, errors, at)
        if found is None:
            continue
        values = entry.get("values")
        if values is None:
            continue  # null clears the field
        if not isinstance(values, list) or not values:
            errors.invalid_type(f"{at}.values", "array")
            continue
        converted = [_value(found, v, errors, f"{at}.values.{j}") for j, v in enumerate(values)]
        kept = [v for v in converted if v is not None]
        if len(kept) != len(converted):
            continue
        if found["type"] in ("select", "radiobutton", "checkbox") and len(kept) > 1:
            errors.invalid_type(f"{at}.values", "single value")
            continue
        stored = [s for s in stored if s["field_id"] != found["id"]]
        stored.append(
            {
                "field_id": found["id"],
                "field_name": found["name"],
                "field_code": found["code"],
                "field_type": found["type"],
                "values": kept,
            }
        )
    return stored or None


TagSpec = int | str  # an existing tag id, or a name to find or create


def check_tags(
    state: SandboxState, entity_type: str, raw: Any, errors: ItemErrors, path: str
) -> list[TagSpec]:
    """Tags given as `[{"name": ...}]` (created on save) or `[{"id": ...}]` (must exist)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.invalid_type(path, "array")
        return []
    specs: list[TagSpec] = []
    for i, entry in enumerate(raw):
        at = f"{path}.{i}"
        if isinstance(entry, dict) and isinstance(entry.get("id"), int):
            if entry["id"] not in state.tags[entity_type]:
                errors.bad_choice(f"{at}.id")
                continue
            specs.append(entry["id"])
        elif isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry["name"]:
            specs.append(entry["name"])
        else:
            errors.missing(f"{at}.name")
    return specs


def resolve_tags(state: SandboxState, entity_type: str, specs: list[TagSpec]) -> list[int]:
    ids = [s if isinstance(s, int) else state.tag(entity_type, s).id for s in specs]
    return list(dict.fromkeys(ids))


def _field(
    state: SandboxState, entity_type: str, entry: JSON, errors: ItemErrors, at: str
) -> JSON | None:
    if "field_id" in entry and entry["field_id"] is not None:
        field_id = entry["field_id"]
        found = state.field_by_id(entity_type, field_id) if isinstance(field_id, int) else None
        if found is None:
            errors.bad_choice(f"{at}.field_id")
        return found
    code = entry.get("field_code")
    if isinstance(code, str) and code:
        found = state.field_by_code(entity_type, code)
        if found is None:
            errors.bad_choice(f"{at}.field_code")
        return found
    errors.missing(f"{at}.field_id")
    return None


def _value(found: JSON, raw: Any, errors: ItemErrors, at: str) -> JSON | None:
    if not isinstance(raw, dict):
        errors.invalid_type(at, "array")
        return None
    kind = found["type"]
    if kind in SELECT_TYPES:
        return _enum_value(found, raw, errors, at)
    if kind == "multitext":
        return _multitext_value(found, raw, errors, at)
    value = raw.get("value")
    if value is None:
        errors.missing(f"{at}.value")
        return None
    if kind == "checkbox":
        if not isinstance(value, bool):
            errors.invalid_type(f"{at}.value", "bool")
            return None
        return {"value": value}
    if kind in ("numeric", "monetary", "price"):
        if isinstance(value, bool) or not _is_number(value):
            errors.invalid_type(f"{at}.value", "numeric")
            return None
        return {"value": value}
    if kind in DATE_TYPES:
        stamp = _timestamp(value)
        if stamp is None:
            errors.invalid_type(f"{at}.value", "int")
            return None
        return {"value": stamp}
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        errors.invalid_type(f"{at}.value", "string")
        return None
    if not _fits(found, str(value), errors, f"{at}.value"):
        return None
    return {"value": str(value)}


def _fits(found: JSON, text: str, errors: ItemErrors, at: str) -> bool:
    limit = value_max(str(found["type"]))
    if limit is not None and len(text) > limit:
        errors.too_long(at, limit)
        return False
    return True


def _enum_value(found: JSON, raw: JSON, errors: ItemErrors, at: str) -> JSON | None:
    enums: list[JSON] = found["enums"] or []
    match: JSON | None
    if raw.get("enum_id") is not None:
        match = next((e for e in enums if e["id"] == raw["enum_id"]), None)
        key = "enum_id"
    elif raw.get("enum_code") is not None:
        match = next((e for e in enums if e.get("code") == raw["enum_code"]), None)
        key = "enum_code"
    elif raw.get("value") is not None:
        match = next((e for e in enums if e["value"] == raw["value"]), None)
        key = "value"
    else:
        errors.missing(f"{at}.value")
        return None
    if match is None:
        errors.bad_choice(f"{at}.{key}")
        return None
    return {"value": match["value"], "enum_id": match["id"], "enum_code": match.get("code")}


def _multitext_value(found: JSON, raw: JSON, errors: ItemErrors, at: str) -> JSON | None:
    value = raw.get("value")
    if value is None:
        errors.missing(f"{at}.value")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        errors.invalid_type(f"{at}.value", "string")
        return None
    if not _fits(found, str(value), errors, f"{at}.value"):
        return None
    enums: list[JSON] = found["enums"] or []
    if raw.get("enum_id") is not None:
        match = next((e for e in enums if e["id"] == raw["enum_id"]), None)
        key = "enum_id"
    elif raw.get("enum_code") is not None:
        match = next((e for e in enums if e["value"] == raw["enum_code"]), None)
        key = "enum_code"
    else:
        match, key = (enums[0] if enums else None), "enum_code"  # default kind: the first
    if match is None:
        errors.bad_choice(f"{at}.{key}")
        return None
    return {"value": str(value), "enum_id": match["id"], "enum_code": match["value"]}


def _is_number(value: Any) -> bool:
    if isinstance(value, int | float):
        return True
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return False
        return True
    return False


def _timestamp(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        if value.isdigit():
            return int(value)
        try:
            return int(datetime.fromisoformat(value).timestamp())
        except ValueError:
            return None
    return None


def field_text(values: list[JSON] | None) -> list[str]:
    """Every value of an entity's custom fields as text, for `query` search."""
    return [str(v.get("value", "")) for cf in values or [] for v in cf["values"]]
