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
