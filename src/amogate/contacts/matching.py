"""Which existing amoCRM contact a lead's person is, and what to add to it — pure.

A person is known by *keys*: each phone normalised to E.164 and each email lower-cased
(``ContactKey``). Matching has three steps, each a plain function:

* ``search_query(key)``: the text to give amoCRM's contact ``query`` search. amoCRM matches
  substrings of any field, comparing a phone's digits as typed (formatting aside, no rewriting:
  ``+7999…`` does not find ``8999…``; amocrm-api.md §4.10). So a phone is searched by its
  *national significant number* (NSN, ``+998 90 123 45 67`` → ``901234567``,
  ``+7 901 234-56-78`` → ``9012345678``): it is a suffix of every way the number is written with
  its digits intact — ``+998 90 123-45-67``, ``998901234567``, ``901234567``, the trunk forms
  ``8 (901) 234-56-78`` / ``0 50 123 4567`` — so one search finds them all. The full
  international digits are not searched as well: they contain the NSN, so any stored text they
  would find, the NSN finds too, and a second search would only spend the account's budget.
  They are used *instead* when the NSN is shorter than ``MIN_NSN_QUERY`` digits, where a
  substring search would hit many unrelated numbers. An email is searched as itself.
* ``choose(keys, cards, region)``: the exact comparison. A hit is only a candidate; it matches
  when one of its PHONE values normalises (``leads.phones``, default region = the gateway's
  ``PHONE_DEFAULT_REGION``) to the same E.164 as one of the keys, or one of its EMAIL values
  equals an email key ignoring case. A stored value in another country's national format
  (``8 901 234-56-78`` in an Uzbek account, meaning +7 901 …) is read a second time with the
  key's own country (or as the international number without its ``+``) when the default
  region cannot make a valid number of it. Several matches
  → the most recently updated contact, ``ambiguous`` and every matching id recorded. A contact
  the gateway itself linked or created for a key (``remembered``) wins without a search:
  amoCRM hides the contact of an unaccepted unsorted item from search (§4.8).
* ``contact_update(card, additions(person, card, region))``: the ``PATCH /api/v4/contacts``
  item adding the lead's new phones/emails. amoCRM's PATCH replaces a field's values list, so
  the item carries every existing value unchanged (value and kind) followed by the new ones.
  Nothing existing is overwritten or dropped — provided the card is fresh: the caller reads
  the contact right before patching, since a value added in amoCRM since the card was read
  would be lost.

Which keys count is ``ContactDedup`` (``CONTACT_DEDUP``: ``phone,email``, ``phone``, ``email``,
``off``), read by ``parse_dedup``. Phones that could not be normalised (kept as typed) are no
key: a typo is no identity.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import phonenumbers

from amogate.amocrm.models import ChannelValue, ContactCard
from amogate.leads.phones import PhoneWithoutDigits, normalize_phone
from amogate.settings import DEDUP_CHOICES

JSON = dict[str, Any]
Kind = Literal["phone", "email"]
KINDS: tuple[Kind, ...] = ("phone", "email")
MIN_NSN_QUERY = 7
SEARCH_LIMIT = 50  # hits read per search: a 7+ digit number or a whole email rarely has more
_NOT_DIGIT = re.compile(r"\D")


# --- the mode -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContactDedup:
    """Which of a lead's values identify its person (``CONTACT_DEDUP``)."""

    phone: bool = True
    email: bool = True

    @property
    def enabled(self) -> bool:
        return self.phone or self.email

    @property
    def kinds(self) -> tuple[Kind, ...]:
        return tuple(k for k in KINDS if getattr(self, k))

    def __str__(self) -> str:
        return ",".join(self.kinds) or "off"


DEFAULT_DEDUP = ContactDedup()


def parse_dedup(text: str) -> ContactDedup:
    """``"phone,email"`` (in any order, any case, spaces allowed), ``"phone"``, ``"email"`` or
    ``"off"``; anything else is a ValueError naming the accepted values."""
    words = [w.strip().lower() for w in text.split(",")]
    allowed = f"use one of: {', '.join(DEDUP_CHOICES)}"
    if not text.strip() or "" in words:
        raise ValueError(f"contact matching mode is empty or has an empty part ({allowed})")
    unknown = [w for w in words if w not in ("phone", "email", "off")]
    if unknown:
        raise ValueError(f"unknown contact matching mode {unknown[0]!r} ({allowed})")
    if len(set(words)) != len(words):
        raise ValueError(f"contact matching mode names a value twice: {text.strip()!r}")
    if "off" in words:
        if len(words) > 1:
            raise ValueError(f"'off' cannot be combined with other modes ({allowed})")
        return ContactDedup(phone=False, email=False)
    return ContactDedup(phone="phone" in words, email="email" in words)


# --- keys -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class ContactKey:
    """One normalised phone (E.164) or email (lower case); ``str()`` is ``phone:+998…``."""

    kind: Kind
    value: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"

    @classmethod
    def parse(cls, text: str) -> ContactKey:
        kind, _, value = text.partition(":")
        if kind == "phone":
            key = phone_key(value)
        elif kind == "email":
            key = email_key(value)
        else:
            key = None
        if key is None or key.value != value:
            raise ValueError(f"not a contact key: {text!r}")
        return key


def phone_key(value: str) -> ContactKey | None:
    """The key of a stored (already normalised) phone; None unless it is E.164 phonenumbers
    reads back unchanged."""
    parsed = _parse_e164(value)
    if parsed is None:
        return None
    return ContactKey("phone", value)


def email_key(value: str) -> ContactKey | None:
    text = value.strip().lower()
    return ContactKey("email", text) if "@" in text else None


@dataclass(frozen=True, slots=True)
class Channel:
    """One phone or email of a lead: the value as stored and its kind (``WORK``, ``MOB``...)."""

    value: str
    type: str = "WORK"


@dataclass(frozen=True, slots=True)
class Person:
    """What a lead says about whom to reach: its phones and emails."""

    phones: tuple[Channel, ...] = ()
    emails: tuple[Channel, ...] = ()

    def keys_for(self, dedup: ContactDedup = DEFAULT_DEDUP) -> tuple[ContactKey, ...]:
        """The keys ``dedup`` matches on, each once, phones first."""
        found: list[ContactKey] = []
        if dedup.phone:
            found += [k for k in (phone_key(c.value) for c in self.phones) if k is not None]
        if dedup.email:
            found += [k for k in (email_key(c.value) for c in self.emails) if k is not None]
        return tuple(dict.fromkeys(found))

    @property
    def empty(self) -> bool:
        return not self.phones and not self.emails


def person_of(contact: Mapping[str, Any]) -> Person:
    """The person of a stored payload's ``contact`` (``phones``/``emails`` lists of
    ``{"value", "type"}``, phones already normalised by ``leads.mapping.stored_payload``)."""
    return Person(
        phones=tuple(_channels(contact.get("phones"))),
        emails=tuple(_channels(contact.get("emails"))),
    )


def merge_persons(persons: Iterable[Person], region: str) -> Person:
    """Every phone and email of ``persons``, each once (same number or same email), in order."""
    phones: list[Channel] = []
    emails: list[Channel] = []
    for person in persons:
        for channel in person.phones:
            if not any(same_phone(channel.value, c.value, region) for c in phones):
                phones.append(channel)
        for channel in person.emails:
            if not any(same_email(channel.value, c.value) for c in emails):
                emails.append(channel)
    return Person(tuple(phones), tuple(emails))


def _channels(raw: Any) -> list[Channel]:
    if not isinstance(raw, list):
        return []
    return [
        Channel(str(item["value"]), str(item.get("type") or "WORK"))
        for item in raw
        if isinstance(item, Mapping) and str(item.get("value") or "").strip()
    ]


# --- searching ------------------------------------------------------------------------------------


def search_query(key: ContactKey) -> str:
    """The ``query`` that makes amoCRM's search return every contact that may hold ``key``
    (see the module docstring for why this spelling)."""
    if key.kind == "email":
        return key.value
    parsed = _parse_e164(key.value)
    assert parsed is not None, "a phone key is always E.164"
    nsn = str(phonenumbers.national_significant_number(parsed))
    if len(nsn) >= MIN_NSN_QUERY:
        return nsn
    return key.value.lstrip("+")


def search_queries(keys: Iterable[ContactKey]) -> dict[str, tuple[ContactKey, ...]]:
    """Each distinct query once, with the keys it serves (``+1 999 555 1122`` and
    ``+7 999 555 1122`` share one), in the order the keys came."""
    queries: dict[str, list[ContactKey]] = {}
    for key in keys:
        served = queries.setdefault(search_query(key), [])
        if key not in served:
            served.append(key)
    return {query: tuple(served) for query, served in queries.items()}


# --- comparing ------------------------------------------------------------------------------------


def holds_key(card: ContactCard, key: ContactKey, region: str) -> bool:
    """Whether one of the contact's PHONE/EMAIL values is ``key`` (exact, normalised)."""
    if key.kind == "email":
        return any(same_email(v.value, key.value) for v in card.emails)
    return any(stored_phone_is(v.value, key.value, region) for v in card.phones)


def hits_by_key(
    keys: Iterable[ContactKey], hits: Iterable[ContactCard], region: str
) -> dict[ContactKey, tuple[ContactCard, ...]]:
    """For each key, the search hits that really hold it (substring hits from other numbers,
    other fields or deleted contacts are dropped)."""
    cards = [c for c in hits if not c.is_deleted]
    return {key: tuple(c for c in cards if holds_key(c, key, region)) for key in keys}


def stored_phone_is(stored: str, e164: str, region: str) -> bool:
    """Whether a phone as a person typed it into amoCRM is the number ``e164``.

    Read with ``region`` first. A value that is no valid number there is also the number
    when its digits are all of ``e164``'s (``4915123456789``: the ``+`` left out), or when read
    with the country of ``e164`` (a Russian ``8 901 234-56-78`` in an Uzbek account).
    """
    if _normalised(stored, region) == e164:
        return True
    if _valid_in(stored, region):
        return False
    if _NOT_DIGIT.sub("", stored) == e164[1:]:
        return True
    parsed = _parse_e164(e164)
    if parsed is None or parsed.country_code is None:
        return False
    own = phonenumbers.region_code_for_country_code(parsed.country_code)
    return own not in (region, "ZZ") and _normalised(stored, own) == e164


def same_phone(a: str, b: str, region: str) -> bool:
    """Two phones are one number: when either is E.164, the other read as in
    ``stored_phone_is``; otherwise (both kept as typed) the same digits."""
    if phone_key(a) is not None:
        return stored_phone_is(b, a, region)
    if phone_key(b) is not None:
        return stored_phone_is(a, b, region)
    digits = _NOT_DIGIT.sub("", a)
    return bool(digits) and digits == _NOT_DIGIT.sub("", b)


def same_email(a: str, b: str) -> bool:
    return a.strip().lower() == b.strip().lower()


def _normalised(text: str, region: str) -> str | None:
    try:
        return normalize_phone(text, region)
    except PhoneWithoutDigits:
        return None


def _valid_in(text: str, region: str) -> bool:
    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(text, region)))
    except phonenumbers.NumberParseException:
        return False


def _parse_e164(value: str) -> phonenumbers.PhoneNumber | None:
    if not value.startswith("+"):
        return None
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return None
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return parsed if e164 == value else None


# --- choosing -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Remembered:
    """The gateway linked or created contact ``contact_id`` for a key at ``at`` (unix seconds)."""

    contact_id: int
    at: float


@dataclass(frozen=True, slots=True)
class Match:
    """The contact a lead is linked to.

    ``card`` is None when the choice came from the gateway's memory (no search was made).
    ``contact_ids`` holds every matching contact, the chosen one first; ``ambiguous`` says
    there was more than one. ``keys`` are the lead's keys the chosen contact holds.
    """

    contact_id: int
    card: ContactCard | None
    ambiguous: bool
    contact_ids: tuple[int, ...]
    keys: tuple[ContactKey, ...]
    remembered: bool


def choose(
    keys: Sequence[ContactKey],
    cards: Iterable[ContactCard],
    region: str,
    remembered: Mapping[ContactKey, Remembered] | None = None,
) -> Match | None:
    """The contact to link for a person with ``keys``, or None: create a new one.

    ``remembered`` (contacts this gateway linked or created for some keys) is asked first and
    needs no cards; among several, the latest. Otherwise ``cards`` (search hits, any number,
    duplicates allowed) are compared exactly and the most recently updated match wins.
    """
    known = [(key, remembered[key]) for key in keys if remembered and key in remembered]
    if known:
        latest = max(known, key=lambda kv: (kv[1].at, kv[1].contact_id))[1]
        ids = _unique([latest.contact_id] + [r.contact_id for _, r in known])
        return Match(
            contact_id=latest.contact_id,
            card=None,
            ambiguous=len(ids) > 1,
            contact_ids=ids,
            keys=tuple(k for k, r in known if r.contact_id == latest.contact_id),
            remembered=True,
        )
    by_id: dict[int, ContactCard] = {}
    for card in cards:
        if card.is_deleted:
            continue
        held = by_id.get(card.id)
        if held is None or card.updated_at > held.updated_at:
            by_id[card.id] = card
    matched = {
        card.id: tuple(k for k in keys if holds_key(card, k, region)) for card in by_id.values()
    }
    candidates = sorted(
        (by_id[i] for i, held in matched.items() if held),
        key=lambda c: (c.updated_at, c.id),
        reverse=True,
    )
    if not candidates:
        return None
    chosen = candidates[0]
    return Match(
        contact_id=chosen.id,
        card=chosen,
        ambiguous=len(candidates) > 1,
        contact_ids=tuple(c.id for c in candidates),
        keys=matched[chosen.id],
        remembered=False,
    )


def _unique(ids: Iterable[int]) -> tuple[int, ...]:
    return tuple(dict.fromkeys(ids))


# --- adding to the chosen contact -----------------------------------------------------------------


def additions(person: Person, card: ContactCard, region: str) -> Person:
    """The lead's phones and emails the contact does not have yet (every one, whatever the
    matching mode: a new way to reach the person is worth keeping)."""
    phones = tuple(
        c
        for c in person.phones
        if not any(same_phone(c.value, v.value, region) for v in card.phones)
    )
    emails = tuple(
        c for c in person.emails if not any(same_email(c.value, v.value) for v in card.emails)
    )
    return merge_persons([Person(phones, emails)], region)


def contact_update(card: ContactCard, new: Person) -> JSON | None:
    """The ``PATCH /api/v4/contacts`` item adding ``new`` to the contact, or None when there is
    nothing to add. Each touched field carries its existing values first, unchanged."""
    fields: list[JSON] = []
    for code, existing, added in (
        ("PHONE", card.phones, new.phones),
        ("EMAIL", card.emails, new.emails),
    ):
        if added:
            values = [_kept(v) for v in existing]
            values += [{"value": c.value, "enum_code": c.type} for c in added]
            fields.append({"field_code": code, "values": values})
    if not fields:
        return None
    return {"id": card.id, "custom_fields_values": fields}


def _kept(value: ChannelValue) -> JSON:
    if value.enum_id is not None:
        return {"value": value.value, "enum_id": value.enum_id}
    if value.enum_code is not None:
        return {"value": value.value, "enum_code": value.enum_code}
    return {"value": value.value}
