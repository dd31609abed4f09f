"""amoCRM's `query` search over leads and contacts (amocrm-api.md §4.10).

amoCRM searches "the entity's filled fields": the sandbox matches when the query (trimmed) is a
substring of any of them — the name, first and last name, and every custom-field value
including PHONE and EMAIL values and the labels of chosen options (leads also by id and
price). Letters compare case-insensitively (Unicode case folding).

Phones compare by their digits as typed: formatting (spaces, dashes, brackets, dots, a
leading `+`) is ignored on both sides, but digits are never rewritten, so `+79995551122` does
not find a stored `89995551122` (a trunk `8` is not a country code `7`) while `9995551122`
finds both, and `901234567` finds `+998 90 123-45-67`. A query counts as a phone when it holds
at least one digit and nothing but digits and those formatting characters. This reading is an
assumption (amoCRM does not document it): practitioners report exactly the `+7`/`8` split and
search by the national part, which only works if formatting is ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from amogate.amocrm.sandbox.entities import Contact, Lead

JSON = dict[str, Any]
_PHONE_QUERY = re.compile(r"^[+\d\s().\-]*\d[\d\s().\-]*$")
_NOT_DIGIT = re.compile(r"\D")


def matches_contact(query: str, contact: Contact) -> bool:
    texts = [contact.name, contact.first_name, contact.last_name]
    return _matches(query, texts + field_texts(contact.custom_fields_values), _phones(contact))


def matches_lead(query: str, lead: Lead) -> bool:
    texts = [lead.name, str(lead.id), str(lead.price)]
    return _matches(query, texts + field_texts(lead.custom_fields_values), [])


def field_texts(values: list[JSON] | None) -> list[str]:
    """Every stored custom-field value as text (enum values are their labels)."""
    return [_text(v.get("value")) for cf in values or [] for v in cf["values"]]


def phone_digits(text: str) -> str:
    return _NOT_DIGIT.sub("", text)


def _matches(query: str, texts: Iterable[str], phones: list[str]) -> bool:
    wanted = query.strip().casefold()
    if not wanted:
        return True
    if any(wanted in text.casefold() for text in texts):
        return True
    if not _PHONE_QUERY.match(wanted):
        return False
    digits = phone_digits(wanted)
    return any(digits in phone_digits(phone) for phone in phones)


def _phones(contact: Contact) -> list[str]:
    return [
        _text(v.get("value"))
        for cf in contact.custom_fields_values or []
        if cf.get("field_code") == "PHONE"
        for v in cf["values"]
    ]


def _text(value: Any) -> str:
    return "" if value is None else str(value)
