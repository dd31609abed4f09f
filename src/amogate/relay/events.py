"""Events as subscribers see them: codes, the JSON envelope, and amoCRM posts turned into events.

A subscriber names the events it wants by amoCRM's own codes, `{action}_{entity}`
(`status_lead`, `add_contact`, `note_lead`; amocrm-api.md §4.11), or by amogate's own
(`gateway.delivery_failed`, `gateway.reauthorization_needed`, `gateway.webhook_disabled`).
Every event goes out as

    {"id": "evt_...", "type": "status_lead", "account": "default", "entity": "lead",
     "action": "status", "occurred_at": "2026-11-29T19:40:12Z", "data": {...}}

`data` is the item exactly as amoCRM sent it (values are text, as amoCRM sends them).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from amogate.amocrm.webhook_format import WebhookPost
from amogate.storage.relay import (
    GATEWAY_DELIVERY_FAILED,
    GATEWAY_REAUTHORIZATION_NEEDED,
    GATEWAY_WEBHOOK_DISABLED,
    Event,
    NewEvent,
)

GATEWAY_EVENTS = (GATEWAY_DELIVERY_FAILED, GATEWAY_REAUTHORIZATION_NEEDED, GATEWAY_WEBHOOK_DISABLED)

_ACTIONS = ("add", "update", "delete", "restore", "status", "responsible", "note")
# The codes amoCRM's POST /api/v4/webhooks accepts (amocrm-api.md §4.11).
AMO_EVENTS = (
    tuple(f"{action}_lead" for action in _ACTIONS)
    + tuple(
        f"{action}_{entity}"
        for entity in ("contact", "company", "customer")
        for action in _ACTIONS
        if action != "status"
    )
    + ("add_task", "update_task", "delete_task", "responsible_task")
    + ("add_unsorted", "update_unsorted", "delete_unsorted")
    + ("add_talk", "update_talk", "add_message")
)
KNOWN_EVENTS = frozenset(AMO_EVENTS + GATEWAY_EVENTS)
# The item fields that say when it happened, best first (unix seconds as text).
_TIME_FIELDS = ("updated_at", "last_modified", "created_at", "date_create")


class UnknownEvents(ValueError):
    def __init__(self, unknown: Iterable[str]) -> None:
        self.unknown = sorted(unknown)
        super().__init__(f"unknown event(s): {', '.join(self.unknown)}")


def parse_event_list(text: str) -> list[str]:
    """`add_lead,status_lead` → the codes, in order, without repeats; `UnknownEvents` for a
    code amoCRM and amogate do not know, ValueError when there is none."""
    codes = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not codes:
        raise ValueError("name at least one event, e.g. --events status_lead")
    unknown = [code for code in codes if code not in KNOWN_EVENTS]
    if unknown:
        raise UnknownEvents(unknown)
    return codes


def amo_codes(codes: Iterable[str]) -> list[str]:
    """The codes amoCRM must send us for these subscriptions (amogate's own are not amoCRM's)."""
    return sorted({code for code in codes if code in AMO_EVENTS})


def code_of(entity: str, action: str) -> str:
    return f"{action}_{entity}"


def events_of(post: WebhookPost, received_at: datetime) -> list[NewEvent]:
    """One event per item of an amoCRM post."""
    return [
        NewEvent(
            code=code_of(event.entity, event.action),
            entity=event.entity,
            action=event.action,
            occurred_at=occurred_at(event.data, received_at),
            data=event.data,
        )
        for event in post.events
    ]


def occurred_at(item: dict[str, Any], fallback: datetime) -> datetime:
    """When amoCRM says the item changed (its newest time field), else when we got it."""
    for name in _TIME_FIELDS:
        value = item.get(name)
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 11:
            try:
                return datetime.fromtimestamp(int(value), tz=UTC)
            except (OverflowError, OSError, ValueError):
                continue
    return fallback


def envelope(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": event.code,
        "account": event.account_key,
        "entity": event.entity,
        "action": event.action,
        "occurred_at": iso(event.occurred_at),
        "data": event.data,
    }


def body_of(event: Event) -> bytes:
    """The exact bytes sent (and signed): compact UTF-8 JSON, the same on every attempt."""
    return json.dumps(envelope(event), ensure_ascii=False, separators=(",", ":")).encode()


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
