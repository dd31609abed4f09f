"""Reading a lead request: the one place that decides what is fatal and what is soft.

A lead is the reason the gateway exists, so it is refused only for the mistakes a form developer
makes on every request and sees at once. Those are FATAL — 422 "Validation failed" with the
original gateway's texts, nothing stored:

* the body is not a JSON object;
* `lead` missing, empty or not an object ("Lead object is required");
* `lead.name` missing or blank ("Lead name is required");
* `contact` missing, empty or not an object ("Contact object is required");
* nothing to reach the person by: no non-blank name, phone or email
  ("At least one contact field (name, phone, email) is required").

Everything else is SOFT: the lead is stored and delivered, the value is used when it can be
read (a number where text was expected, a price written as "50 000", an id written as "123",
the first address of "1.2.3.4, 10.0.0.1") or set aside when it cannot (a malformed email, a
phone without digits, a list where text was expected). Either way a `Remark` records the field,
what happened and the value as typed: the answer lists the remarks as `data.warnings`
(`{"field", "problem"}`) and the lead's note in amoCRM shows the values. Texts longer than
amoCRM takes are cut to its limit, the full text going to the note; keys amogate does not know
are kept in the note too.

Field names and option labels are checked later, against the account's field lists
(`mapping`); values amoCRM itself refuses are handled by the worker (`refusals`).
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast

from price_parser import Price

from amogate.errors import ValidationFailed
from amogate.leads.phones import has_digits
from amogate.leads.schemas import (
    CONTACT_FIELD_REQUIRED,
    CONTACT_REQUIRED,
    LEAD_NAME_REQUIRED,
    LEAD_REQUIRED,
    MAX_CHANNELS,
    MAX_ID,
    MAX_LIST,
    MAX_PHONE,
    MAX_PRICE,
    MAX_TEXT,
    MAX_URL,
    MAX_UTM,
    MAX_UTM_KEY,
    LeadRequest,
    Remark,
    valid_email,
)

JSON = dict[str, Any]
NOT_AN_OBJECT_BODY = "Request body must be a JSON object"

# What a remark says, in words for the form developer (the value itself goes to the note).
NUMBER_AS_TEXT = "a number where text was expected; used as text"
NOT_TEXT = "not text; kept in the note"
TOO_LONG = "longer than {limit} characters; cut to {limit}, the full text is in the note"
NOT_AN_IP = "not an IP address; kept in the note"
SEVERAL_IPS = "more than one address; the first ({ip}) was used"
PRICE_AS_TEXT = "a price written as text; read as {price}"
PRICE_ROUNDED = "amoCRM keeps whole prices; rounded to {price}"
NOT_A_PRICE = "not a price amoCRM can take; kept in the note"
ID_AS_TEXT = "an id written as text; read as {id}"
NOT_AN_ID = "not an id; kept in the note"
NOT_AN_EMAIL = "not a valid email address; kept in the note"
NO_DIGITS = "no digits, so not a phone number; kept in the note"
NOT_A_LIST = "not a list; kept in the note"
TEXT_AS_LIST = "text where a list was expected; read as a list of one"
COMMA_LIST = "text where a list was expected; read as a comma-separated list"
NOT_AN_OBJECT = "not an object; kept in the note"
TOO_MANY = "more than {limit} items; the rest are kept in the note"
UNKNOWN_KEY = "not a field amogate knows; kept in the note"
NO_FIELD = "names no field (field_id, field_code or field_name); kept in the note"
NO_VALUE = "has no value; kept in the note"
NOT_A_VALUE = "not a value amoCRM can take; kept in the note"
UNKNOWN_KIND = "unknown kind {kind!r}; {default} used"

EMPTY_KEY = '""'  # how an empty key appears in a dotted path
PHONE_KINDS = ("WORK", "WORKDD", "MOB", "FAX", "HOME", "OTHER")
EMAIL_KINDS = ("WORK", "PRIV", "OTHER")

MODES = ("unsorted", "lead")
UNKNOWN_MODE = "unknown mode {mode!r}; unsorted used (modes: unsorted, lead)"
TOP_KEYS = frozenset(
    {
        "source",
        "form_name",
        "form_page",
        "referer",
        "ip",
        "pipeline_id",
        "mode",
        "visitor_uid",
        "lead",
        "contact",
        "utm",
        "comment",
    }
)
LEAD_KEYS = frozenset(
    {"name", "price", "status_id", "responsible_user_id", "custom_fields", "tags"}
)
CONTACT_KEYS = frozenset(
    {"name", "first_name", "last_name", "phone", "email", "phones", "emails", "custom_fields"}
)
CUSTOM_FIELD_KEYS = frozenset(
    {"field_id", "field_code", "field_name", "value", "values", "enum_id", "enum_ids", "enum"}
    | {"enums"}
)
REACH_KEYS = ("name", "first_name", "last_name", "phone", "email")


def parse_lead_request(data: Any) -> LeadRequest:
    """Read a decoded JSON body. Raises `ValidationFailed` (every fatal problem at once, keyed
    by dotted path) or returns the request with its `remarks`."""
    check_fatal(data)
    reader = _Reader()
    cleaned = reader.request(data)
    cleaned["remarks"] = [r.model_dump() for r in reader.remarks]
    return LeadRequest.model_validate(cleaned)


def check_fatal(data: Any) -> None:
    if not isinstance(data, dict):
        raise ValidationFailed(details={"request": NOT_AN_OBJECT_BODY})
    details: dict[str, str] = {}
    lead = data.get("lead")
    if not isinstance(lead, dict) or not lead:
        details["lead"] = LEAD_REQUIRED
    elif _readable_text(lead.get("name")) is None:
        details["lead.name"] = LEAD_NAME_REQUIRED
    contact = data.get("contact")
    if not isinstance(contact, dict) or not contact:
        details["contact"] = CONTACT_REQUIRED
    elif _reach_text(contact) is None:
        details["contact"] = CONTACT_FIELD_REQUIRED
    if details:
        raise ValidationFailed(details=details)


def _readable_text(value: Any) -> str | None:
    """A non-blank text or a finite number, as text; None for anything else."""
    if isinstance(value, str):
        return value.strip() or None
    if _is_number(value):
        return _number_text(value)
    return None


def _reach_text(contact: JSON) -> str | None:
    """The first thing the person can be reached or called by, as the caller typed it."""
    for key in REACH_KEYS:
        text = _readable_text(contact.get(key))
        if text is not None:
            return text
    for key in ("phones", "emails"):
        items = contact.get(key)
        items = items if isinstance(items, list) else [items]
        for item in items:
            text = _readable_text(item.get("value") if isinstance(item, dict) else item)
            if text is not None:
                return text
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _number_text(value: int | float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return str(value)


def json_safe(value: Any) -> Any:
    """A value as it may be stored and shown: infinities and NaN (which json.loads accepts but
    no JSON column or amoCRM does) become text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    return value


def shown(value: Any) -> str:
    """A remark's value as the note shows it: text as typed, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(json_safe(value), ensure_ascii=False)


class _Reader:
    def __init__(self) -> None:
        self.remarks: list[Remark] = []

    def remark(self, field: str, problem: str, value: Any, *, extra: bool = False) -> None:
        self.remarks.append(
            Remark(field=field, problem=problem, value=json_safe(value), extra=extra)
        )

    # --- the request -------------------------------------------------------------------------

    def request(self, data: JSON) -> JSON:
        out: JSON = {}
        for key, limit in (
            ("source", MAX_TEXT),
            ("form_name", MAX_TEXT),
            ("form_page", MAX_URL),
            ("referer", MAX_URL),
            ("visitor_uid", MAX_TEXT),
            ("comment", None),
        ):
            self._put(out, key, self.text(key, data.get(key), limit))
        self._put(out, "ip", self.ip("ip", data.get("ip")))
        self._put(out, "pipeline_id", self.id("pipeline_id", data.get("pipeline_id")))
        self._put(out, "mode", self.mode(data.get("mode")))
        out["utm"] = self.utm("utm", data.get("utm"))
        out["lead"] = self.lead(data["lead"])
        out["contact"] = self.contact(data["contact"])
        self.unknown_keys("", data, TOP_KEYS)
        return out

    def lead(self, raw: JSON) -> JSON:
        name = self.text("lead.name", raw["name"], MAX_TEXT)
        assert name is not None  # check_fatal saw a readable name
        out: JSON = {"name": name}
        self._put(out, "price", self.price("lead.price", raw.get("price")))
        for key in ("status_id", "responsible_user_id"):
            self._put(out, key, self.id(f"lead.{key}", raw.get(key)))
        out["custom_fields"] = self.custom_fields("lead.custom_fields", raw.get("custom_fields"))
        out["tags"] = self.tags("lead.tags", raw.get("tags"))
        self.unknown_keys("lead.", raw, LEAD_KEYS)
        return out

    def contact(self, raw: JSON) -> JSON:
        out: JSON = {}
        for key in ("name", "first_name", "last_name"):
            self._put(out, key, self.text(f"contact.{key}", raw.get(key), MAX_TEXT))
        self._put(out, "phone", self.phone("contact.phone", raw.get("phone")))
        self._put(out, "email", self.email("contact.email", raw.get("email")))
        out["phones"] = self.channels("contact.phones", raw.get("phones"), self.phone, PHONE_KINDS)
        out["emails"] = self.channels("contact.emails", raw.get("emails"), self.email, EMAIL_KINDS)
        out["custom_fields"] = self.custom_fields("contact.custom_fields", raw.get("custom_fields"))
        reachable = any(out.get(k) for k in (*REACH_KEYS, "phones", "emails"))
        if not reachable:
            # Only a value that could not be used (a phone without digits, say) was given: name
            # the contact by it, so the manager sees something (the note says what it was).
            out["name"] = (_reach_text(raw) or "—")[:MAX_TEXT]
        self.unknown_keys("contact.", raw, CONTACT_KEYS)
        return out

    def unknown_keys(self, prefix: str, raw: JSON, known: frozenset[str]) -> None:
        for key, value in raw.items():
            if key not in known:
                self.remark(f"{prefix}{key or EMPTY_KEY}", UNKNOWN_KEY, value, extra=True)

    @staticmethod
    def _put(out: JSON, key: str, value: Any) -> None:
        if value is not None:
            out[key] = value

    # --- scalars -----------------------------------------------------------------------------

    def mode(self, raw: Any) -> str | None:
        """``"unsorted"`` or ``"lead"`` (any case); anything else: a remark, and the default."""
        if raw is None:
            return None
        given = raw.strip().lower() if isinstance(raw, str) else raw
        if given in MODES:
            return str(given)
        self.remark("mode", UNKNOWN_MODE.format(mode=raw), raw)
        return None

    def text(self, path: str, raw: Any, limit: int | None) -> str | None:
        if raw is None:
            return None
        if isinstance(raw, str):
            text = raw.strip()
        elif _is_number(raw):
            text = _number_text(raw)
            self.remark(path, NUMBER_AS_TEXT, raw)
        else:
            self.remark(path, NOT_TEXT, raw)
            return None
        if limit is not None and len(text) > limit:
            self.remark(path, TOO_LONG.format(limit=limit), raw)
            text = text[:limit].rstrip()
        return text or None

    def id(self, path: str, raw: Any) -> int | None:
        if raw is None or raw == "":
            return None
        if isinstance(raw, int) and not isinstance(raw, bool) and 0 < raw <= MAX_ID:
            return raw
        if isinstance(raw, float) and raw.is_integer() and 0 < raw <= MAX_ID:
            return int(raw)
        if isinstance(raw, str) and raw.strip().isascii() and raw.strip().isdigit():
            number = int(raw.strip())
            if 0 < number <= MAX_ID:
                self.remark(path, ID_AS_TEXT.format(id=number), raw)
                return number
        self.remark(path, NOT_AN_ID, raw)
        return None

    def price(self, path: str, raw: Any) -> int | None:
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return None
        amount: Decimal | None = None
        if _is_number(raw):
            amount = Decimal(str(raw))
        elif isinstance(raw, str) and not re.search(r"-\s*\d", raw):
            # "50 000", "$1,500", "1 500,50 so'm"; a minus sign is not a price amoCRM takes
            amount = Price.fromstring(raw).amount
        if amount is None or not amount.is_finite() or amount < 0 or amount > MAX_PRICE:
            self.remark(path, NOT_A_PRICE, raw)
            return None
        price = int(amount.to_integral_value(rounding=ROUND_HALF_UP))
        if isinstance(raw, str):
            self.remark(path, PRICE_AS_TEXT.format(price=price), raw)
        elif price != amount:
            self.remark(path, PRICE_ROUNDED.format(price=price), raw)
        return price

    def ip(self, path: str, raw: Any) -> str | None:
        if raw is None or raw == "":
            return None
        candidates: list[Any]
        if isinstance(raw, str):
            candidates = [part for part in re.split(r"[\s,;]+", raw.strip()) if part]
        elif isinstance(raw, list):
            candidates = raw
        else:
            candidates = []
        for candidate in candidates:
            if isinstance(candidate, str) and _is_ip(candidate.strip()):
                address = candidate.strip()
                if len(candidates) > 1 or not isinstance(raw, str):
                    self.remark(path, SEVERAL_IPS.format(ip=address), raw)
                return address
        self.remark(path, NOT_AN_IP, raw)
        return None

    def phone(self, path: str, raw: Any) -> str | None:
        text = self.text(path, raw, MAX_PHONE)
        if text is not None and not has_digits(text):
            self.remark(path, NO_DIGITS, raw)
            return None
        return text

    def email(self, path: str, raw: Any) -> str | None:
        if isinstance(raw, str):
            text = raw.strip()
            if not text:
                return None
            address = valid_email(text) if len(text) <= MAX_TEXT else None
            if address is None:
                self.remark(path, NOT_AN_EMAIL, raw)
            return address
        if raw is not None:
            self.remark(path, NOT_AN_EMAIL, raw)
        return None

    # --- lists and objects -------------------------------------------------------------------

    def as_list(self, path: str, raw: Any, limit: int, *, text_is_one: bool = True) -> list[Any]:
        """`raw` as a list of at most `limit` items; what does not fit goes to remarks."""
        if raw is None:
            return []
        if isinstance(raw, str | int | float) and not isinstance(raw, bool) and text_is_one:
            self.remark(path, TEXT_AS_LIST, raw)
            return [raw]
        if not isinstance(raw, list):
            self.remark(path, NOT_A_LIST, raw)
            return []
        if len(raw) > limit:
            self.remark(path, TOO_MANY.format(limit=limit), raw[limit:])
        return raw[:limit]

    def channels(
        self,
        path: str,
        raw: Any,
        read: Callable[[str, Any], str | None],
        kinds: tuple[str, ...],
    ) -> list[JSON]:
        items: list[JSON] = []
        for i, item in enumerate(self.as_list(path, raw, MAX_CHANNELS)):
            at = f"{path}.{i}"
            kind = kinds[0]
            if isinstance(item, dict):
                value = read(f"{at}.value", item.get("value"))
                given = item.get("type")
                if isinstance(given, str) and given.strip().upper() in kinds:
                    kind = given.strip().upper()
                elif given is not None:
                    self.remark(f"{at}.type", UNKNOWN_KIND.format(kind=given, default=kind), given)
                self.unknown_keys(f"{at}.", item, frozenset({"value", "type"}))
            else:
                value = read(at, item)
            if value is not None:
                items.append({"value": value, "type": kind})
        return items

    def utm(self, path: str, raw: Any) -> dict[str, str]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.remark(path, NOT_AN_OBJECT, raw)
            return {}
        utm: dict[str, str] = {}
        for key, value in raw.items():
            name = str(key).strip().lower()
            at = f"{path}.{key or EMPTY_KEY}"
            if not name or len(name) > MAX_UTM_KEY or len(utm) >= MAX_UTM:
                self.remark(at, UNKNOWN_KEY, value, extra=True)
                continue
            text = self.text(at, value, MAX_TEXT)
            if text is not None:
                utm[name] = text
        return utm

    def tags(self, path: str, raw: Any) -> list[JSON]:
        if isinstance(raw, str):
            names = [part for part in raw.split(",") if part.strip()]
            self.remark(path, COMMA_LIST, raw)
            raw = names
        tags: list[JSON] = []
        for i, item in enumerate(self.as_list(path, raw, MAX_LIST, text_is_one=False)):
            at = f"{path}.{i}"
            if isinstance(item, dict):
                tag_id = self.id(f"{at}.id", item.get("id"))
                name = self.text(f"{at}.name", item.get("name"), MAX_TEXT)
                self.unknown_keys(f"{at}.", item, frozenset({"id", "name"}))
                if tag_id is not None:
                    tags.append({"id": tag_id})
                elif name is not None:
                    tags.append({"name": name})
                elif item.get("id") is None and item.get("name") is None:
                    self.remark(at, NOT_A_VALUE, item)
            else:
                name = self.text(at, item, MAX_TEXT)
                if name is not None:
                    tags.append({"name": name})
        return tags

    def custom_fields(self, path: str, raw: Any) -> list[JSON]:
        entries: list[JSON] = []
        for i, entry in enumerate(self.as_list(path, raw, MAX_LIST, text_is_one=False)):
            at = f"{path}.{i}"
            if not isinstance(entry, dict):
                self.remark(at, NOT_AN_OBJECT, entry)
                continue
            clean = self.custom_field(at, entry)
            if clean is not None:
                clean["index"] = i
                entries.append(clean)
        return entries

    def custom_field(self, at: str, entry: JSON) -> JSON | None:
        clean: JSON = {}
        self._put(clean, "field_id", self.id(f"{at}.field_id", entry.get("field_id")))
        for key in ("field_code", "field_name", "enum"):
            self._put(clean, key, self.text(f"{at}.{key}", entry.get(key), MAX_TEXT))
        self._put(clean, "enum_id", self.id(f"{at}.enum_id", entry.get("enum_id")))
        values = self.scalars(f"{at}.values", entry.get("values"))
        value = entry.get("value")
        if isinstance(value, list):
            values = self.scalars(f"{at}.value", value) + values
        elif value is not None:
            scalar = self.scalar(f"{at}.value", value)
            if scalar is not None:
                clean["value"] = scalar
        if values:
            clean["values"] = values[:MAX_LIST]
        listed = self.as_list(f"{at}.enum_ids", entry.get("enum_ids"), MAX_LIST)
        enum_ids = [self.id(f"{at}.enum_ids.{j}", item) for j, item in enumerate(listed)]
        if any(e is not None for e in enum_ids):
            clean["enum_ids"] = [e for e in enum_ids if e is not None]
        labels = self.as_list(f"{at}.enums", entry.get("enums"), MAX_LIST)
        enums = [self.text(f"{at}.enums.{j}", item, MAX_TEXT) for j, item in enumerate(labels)]
        if any(e is not None for e in enums):
            clean["enums"] = [e for e in enums if e is not None]
        self.unknown_keys(f"{at}.", entry, CUSTOM_FIELD_KEYS)
        if not any(clean.get(k) is not None for k in ("field_id", "field_code", "field_name")):
            self.remark(at, NO_FIELD, entry)
            return None
        if not any(
            clean.get(k) not in (None, []) for k in ("value", "values", "enum_id", "enum_ids")
        ) and not any(clean.get(k) for k in ("enum", "enums")):
            self.remark(at, NO_VALUE, entry)
            return None
        return clean

    def scalars(self, path: str, raw: Any) -> list[Any]:
        listed = self.as_list(path, raw, MAX_LIST)
        found = [self.scalar(f"{path}.{j}", v) for j, v in enumerate(listed)]
        return [v for v in found if v is not None]

    def scalar(self, path: str, raw: Any) -> str | int | float | bool | None:
        if isinstance(raw, bool):
            return raw
        if _is_number(raw):
            return cast(int | float, raw)
        if isinstance(raw, str):
            return raw.strip() or None
        if raw is not None:
            self.remark(path, NOT_A_VALUE, raw)
        return None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
