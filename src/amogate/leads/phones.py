"""Phone normalisation: E.164 with a default region, never rejecting a lead for a typo."""

from __future__ import annotations

import re

import phonenumbers


class PhoneWithoutDigits(ValueError):
    pass


def has_digits(text: str) -> bool:
    """Decimal digits of any script (what phonenumbers can read); the request validator and
    `normalize_phone` share this, so no accepted phone is refused at delivery. (`str.isdigit`
    also counts "²" or "①", which no phone parser reads.)"""
    return re.search(r"\d", text) is not None


def normalize_phone(raw: str, default_region: str) -> str:
    """`90 123-45-67` (region UZ) -> `+998901234567`.

    A number that cannot be parsed or is not a possible number but has digits is returned as
    given (trimmed): a lead is never lost to a phone typo. So is one whose E.164 form would read
    back as another number (national prefixes inside it, as in "00200000000000"). No digits at
    all -> PhoneWithoutDigits.
    """
    text = raw.strip()
    if not has_digits(text):
        raise PhoneWithoutDigits("Phone number must contain digits")
    candidate = text
    # "00998..." is the international prefix written out; "8 9..." stays as regional input.
    if candidate.startswith("00"):
        candidate = "+" + candidate[2:]
    try:
        parsed = phonenumbers.parse(candidate, default_region)
    except phonenumbers.NumberParseException:
        return text
    if not phonenumbers.is_possible_number(parsed):
        return text
    e164 = str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))
    return e164 if _reads_back(e164) else text


def _reads_back(e164: str) -> bool:
    try:
        again = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.format_number(again, phonenumbers.PhoneNumberFormat.E164) == e164)
