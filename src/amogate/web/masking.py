"""Partly hide phones and e-mail addresses in a stored request before it is shown.

Enough stays visible to recognise a lead (the last 4 digits of a phone, the first letters and
the domain of an address), the same rule the logs follow."""

from __future__ import annotations

from typing import Any

PHONE_KEYS = frozenset({"phone", "phones"})
EMAIL_KEYS = frozenset({"email", "emails"})
MASK = "•"


def mask_phone(value: str) -> str:
    """Every digit but the last 4 becomes a dot; separators and a leading + stay."""
    digits = sum(ch.isdigit() for ch in value)
    keep_from = digits - 4
    seen = 0
    out = []
    for ch in value:
        if ch.isdigit():
            out.append(ch if seen >= keep_from else MASK)
            seen += 1
        else:
            out.append(ch)
    return "".join(out)


def mask_email(value: str) -> str:
    local, at, domain = value.partition("@")
    if not at:
        return MASK * min(len(value), 8)
    shown = local[:2] if len(local) > 3 else local[:1]
    return f"{shown}{MASK * 3}@{domain}"


def _mask_value(value: Any, masker: Any) -> Any:
    if isinstance(value, str):
        return masker(value)
    if isinstance(value, list):
        return [_mask_value(item, masker) for item in value]
    if isinstance(value, dict):
        # {"value": "+998...", "type": "WORK"}-style entries: mask the strings that carry data.
        return {
            k: (_mask_value(v, masker) if k in ("value", "phone", "email") else v)
            for k, v in value.items()
        }
    return value


def mask_payload(payload: Any) -> Any:
    """A copy of `payload` with every phone and e-mail value masked, at any depth."""
    if isinstance(payload, list):
        return [mask_payload(item) for item in payload]
    if not isinstance(payload, dict):
        return payload
    masked: dict[str, Any] = {}
    # A contact custom field named PHONE or EMAIL carries the same data as `phone`/`email`.
    code = str(payload.get("field_code") or payload.get("code") or "").upper()
    field_masker = {"PHONE": mask_phone, "EMAIL": mask_email}.get(code)
    for key, value in payload.items():
        if field_masker is not None and key in ("value", "values"):
            masked[key] = _mask_value(value, field_masker)
            continue
        lowered = str(key).lower()
        if lowered in PHONE_KEYS:
            masked[key] = _mask_value(value, mask_phone)
        elif lowered in EMAIL_KEYS:
            masked[key] = _mask_value(value, mask_email)
        else:
            masked[key] = mask_payload(value)
    return masked
