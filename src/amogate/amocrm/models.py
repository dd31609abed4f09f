"""The few amoCRM results the gateway consumes field by field; everything else stays plain JSON."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class UnsortedResult:
    """One created unsorted item: its ``uid`` and the ids of the lead and contact it holds."""

    request_id: str | None
    uid: str
    lead_id: int | None
    contact_id: int | None


@dataclass(frozen=True, slots=True)
class NoteResult:
    request_id: str | None
    id: int
    entity_id: int | None


@dataclass(frozen=True, slots=True)
class ComplexResult:
    """One lead made by ``POST /api/v4/leads/complex`` (amocrm-api.md §4.7).

    ``request_ids`` is a tuple because amoCRM answers an array there: several request items
    merged into one lead give several ids. ``merged`` means amoCRM's own duplicate control put
    the data into an existing lead or contact.
    """

    request_ids: tuple[str, ...]
    lead_id: int
    contact_id: int | None
    company_id: int | None
    merged: bool


@dataclass(frozen=True, slots=True)
class UpdateResult:
    """One entity changed by a batch ``PATCH``: its id and amoCRM's new ``updated_at``."""

    request_id: str | None
    id: int
    updated_at: int | None


@dataclass(frozen=True, slots=True)
class ChannelValue:
    """One value of a contact's PHONE or EMAIL field as amoCRM stores it (kind included, so a
    PATCH can send it back unchanged)."""

    value: str
    enum_id: int | None = None
    enum_code: str | None = None


@dataclass(frozen=True, slots=True)
class ContactCard:
    """What matching needs of a contact: its id, when it last changed and its phones/emails."""

    id: int
    name: str
    updated_at: int
    phones: tuple[ChannelValue, ...]
    emails: tuple[ChannelValue, ...]
    is_deleted: bool = False


def embedded(body: Mapping[str, Any] | None, key: str) -> list[dict[str, Any]]:
    """``body["_embedded"][key]`` as a list of objects (``[]`` when absent)."""
    if not isinstance(body, Mapping):
        return []
    items = (body.get("_embedded") or {}).get(key)
    if not isinstance(items, list):
        return []
    return [item for item in items if isinstance(item, dict)]


def next_href(body: Mapping[str, Any] | None) -> str | None:
    if not isinstance(body, Mapping):
        return None
    link = (body.get("_links") or {}).get("next")
    href = link.get("href") if isinstance(link, Mapping) else None
    return href if isinstance(href, str) and href else None


def unsorted_result(item: Mapping[str, Any]) -> UnsortedResult:
    return UnsortedResult(
        request_id=_opt_str(item.get("request_id")),
        uid=str(item.get("uid", "")),
        lead_id=_first_id(embedded(item, "leads")),
        contact_id=_first_id(embedded(item, "contacts")),
    )


def note_result(item: Mapping[str, Any]) -> NoteResult:
    return NoteResult(
        request_id=_opt_str(item.get("request_id")),
        id=int(item["id"]),
        entity_id=_opt_int(item.get("entity_id")),
    )


def complex_result(item: Mapping[str, Any]) -> ComplexResult:
    raw_ids = item.get("request_id")
    ids = raw_ids if isinstance(raw_ids, list) else [] if raw_ids is None else [raw_ids]
    return ComplexResult(
        request_ids=tuple(str(i) for i in ids),
        lead_id=int(item["id"]),
        contact_id=_opt_int(item.get("contact_id")),
        company_id=_opt_int(item.get("company_id")),
        merged=item.get("merged") is True,
    )


def update_result(item: Mapping[str, Any]) -> UpdateResult:
    return UpdateResult(
        request_id=_opt_str(item.get("request_id")),
        id=int(item["id"]),
        updated_at=_opt_int(item.get("updated_at")),
    )


def contact_card(item: Mapping[str, Any]) -> ContactCard:
    """A contact as read from amoCRM (search, list or single read) → its ``ContactCard``."""
    return ContactCard(
        id=int(item["id"]),
        name=str(item.get("name") or ""),
        updated_at=_opt_int(item.get("updated_at")) or 0,
        phones=channel_values(item, "PHONE"),
        emails=channel_values(item, "EMAIL"),
        is_deleted=item.get("is_deleted") is True,
    )


def channel_values(item: Mapping[str, Any], code: str) -> tuple[ChannelValue, ...]:
    """The values of the custom field with ``field_code`` ``code`` (``PHONE``, ``EMAIL``)."""
    found: list[ChannelValue] = []
    for entry in item.get("custom_fields_values") or []:
        if not isinstance(entry, Mapping) or entry.get("field_code") != code:
            continue
        for value in entry.get("values") or []:
            if isinstance(value, Mapping) and value.get("value") not in (None, ""):
                code_of = value.get("enum_code")
                found.append(
                    ChannelValue(
                        value=str(value["value"]),
                        enum_id=_opt_int(value.get("enum_id")),
                        enum_code=str(code_of) if code_of else None,
                    )
                )
    return tuple(found)


def _first_id(items: Sequence[Mapping[str, Any]]) -> int | None:
    return _opt_int(items[0].get("id")) if items else None


def _opt_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _opt_str(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):  # complex answers carry request_id as a list
        return str(value[0]) if value else None
    return str(value)
