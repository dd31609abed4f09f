"""amoCRM's webhook body format (amocrm-api.md §4.11): parse it into JSON events, and back.

amoCRM POSTs `application/x-www-form-urlencoded` bodies whose keys are PHP bracket paths,
`{entity_key: {action: [item, ...]}, "account": {...}}` written out flat:

    leads[status][0][id]=15318175&leads[status][0][old_status_id]=67548607&...
    &account[subdomain]=test&account[id]=1312313&account[_links][self]=https://test.kommo.com

`parse_webhook(body)` turns such a body into a `WebhookPost`: one `WebhookEvent(entity, action,
data)` per item, in the order the body lists them, and the `account` part. Values stay strings
exactly as amoCRM sent them (numbers included). A bracket group whose keys are all decimal
numbers becomes a list in numeric key order, so `custom_fields`, `values` and `tags` are lists
(and `linked_leads_id[123]=123`, keyed by lead id, becomes `["123"]`); `a[]=x` appends as in
PHP. Entities: `leads` → lead, `contacts` → contact or company by the item's `type` (amoCRM sends
companies under `contacts` too), `companies` → company, `customers` → customer, `tasks` →
task, `unsorted` → unsorted; any other key (`talk`, `message`, catalogs) is kept as it is.

Anything else raises `WebhookFormatError` (a `ValueError`), and nothing else is ever raised:
an empty or non-UTF-8 body, a field without `=`, an unbalanced bracket or text after one, a
key that is both a value and a group, a repeated key, a top-level value that is not a group of
actions, an item that is not a group, or input past the limits. The limits bound the work a
hostile body can cause: `MAX_BODY_BYTES`, `MAX_FIELDS` pairs, `MAX_DEPTH` key segments,
`MAX_EVENTS` items. Error messages never quote the body (it holds personal data).

`encode_webhook(events, account)` is the inverse, what the sandbox sends: keys percent-encoded
as PHP's `http_build_query` does, `True`/`False` as `1`/`0`, numbers as text, `None` left out.
`parse_webhook(encode_webhook(e, a))` gives back `e` and `a` when every leaf is a string, no
group is empty or keyed by numbers only, and events are listed grouped by entity key, then
action (the order a body can express).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

MAX_BODY_BYTES = 1024 * 1024
MAX_FIELDS = 20_000
MAX_DEPTH = 16
MAX_EVENTS = 1_000
# Longer digit runs are ordinary keys: int() of a huge digit string is slow (and capped).
MAX_INDEX_DIGITS = 18

ENTITIES = {
    "leads": "lead",
    "contacts": "contact",
    "companies": "company",
    "customers": "customer",
    "tasks": "task",
    "unsorted": "unsorted",
}
# Where each entity is written; companies travel under `contacts` with `type=company`.
ENTITY_KEYS = {
    "lead": "leads",
    "contact": "contacts",
    "company": "contacts",
    "customer": "customers",
    "task": "tasks",
    "unsorted": "unsorted",
}


class WebhookFormatError(ValueError):
    """The body is not an amoCRM webhook body (or is too big to be one)."""


@dataclass(frozen=True)
class WebhookEvent:
    entity: str
    action: str
    data: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"entity": self.entity, "action": self.action, "data": self.data}


@dataclass(frozen=True)
class WebhookPost:
    events: list[WebhookEvent]
    account: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"events": [e.as_json() for e in self.events], "account": self.account}


def parse_webhook(body: bytes) -> WebhookPost:
    """The events and account of one amoCRM webhook body; `WebhookFormatError` if malformed."""
    tree = parse_form(body)
    account = tree.pop("account", {})
    if not isinstance(account, dict):
        raise WebhookFormatError("account must be a group of fields")
    events: list[WebhookEvent] = []
    for key, actions in tree.items():
        if not isinstance(actions, dict):
            raise WebhookFormatError("a top-level key must hold actions, like leads[add][0]")
        for action, items in actions.items():
            if not isinstance(items, list):
                raise WebhookFormatError("an action must hold numbered items")
            for item in items:
                if not isinstance(item, dict):
                    raise WebhookFormatError("an item must be a group of fields")
                if len(events) >= MAX_EVENTS:
                    raise WebhookFormatError(f"more than {MAX_EVENTS} items")
                events.append(WebhookEvent(_entity_of(key, item), action, item))
    return WebhookPost(events, account)


def parse_form(body: bytes) -> dict[str, Any]:
    """A PHP-style urlencoded body as nested dicts and lists (the top level stays a dict)."""
    if not body.strip():
        raise WebhookFormatError("empty body")
    if len(body) > MAX_BODY_BYTES:
        raise WebhookFormatError(f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except UnicodeError:
        raise WebhookFormatError("body is not UTF-8") from None
    except ValueError:
        # parse_qsl's own messages quote the input; ours must not.
        raise WebhookFormatError(
            f"not a form body (a field without '=' or more than {MAX_FIELDS} fields)"
        ) from None
    root = _Group()
    for key, value in pairs:
        _insert(root, _split_key(key), value)
    return {name: _finish(child) for name, child in root.items()}


def encode_webhook(events: Iterable[WebhookEvent], account: Mapping[str, Any]) -> bytes:
    """The urlencoded body amoCRM would POST for `events` of one account."""
    grouped: dict[str, dict[str, list[Mapping[str, Any]]]] = {}
    for event in events:
        key = ENTITY_KEYS.get(event.entity, event.entity)
        data: Mapping[str, Any] = event.data
        if event.entity == "company" and key == "contacts" and "type" not in data:
            data = {**data, "type": "company"}
        grouped.setdefault(key, {}).setdefault(event.action, []).append(data)
    pairs: list[tuple[str, str]] = []
    for key, actions in grouped.items():
        for action, items in actions.items():
            for index, item in enumerate(items):
                _flatten(f"{_segment(key)}[{_segment(action)}][{index}]", item, pairs)
    _flatten("account", account, pairs)
    return urlencode(pairs).encode("ascii")


class _Group(dict[str, Any]):
    """A bracket group while parsing; remembers the next index for `[]`, as PHP does."""

    next_index: int = 0


def _split_key(key: str) -> list[str]:
    """`leads[status][0][id]` → `["leads", "status", "0", "id"]`."""
    opening = key.find("[")
    name = key if opening == -1 else key[:opening]
    if not name or "]" in name:
        raise WebhookFormatError("a key must start with a name")
    segments = [name]
    at = len(name)
    while at < len(key):
        if key[at] != "[":
            raise WebhookFormatError("text after a closing bracket")
        closing = key.find("]", at)
        if closing == -1:
            raise WebhookFormatError("unclosed bracket in a key")
        segment = key[at + 1 : closing]
        if "[" in segment:
            raise WebhookFormatError("nested bracket in a key")
        segments.append(segment)
        if len(segments) > MAX_DEPTH:
            raise WebhookFormatError(f"a key deeper than {MAX_DEPTH} levels")
        at = closing + 1
    return segments


def _insert(root: _Group, segments: list[str], value: str) -> None:
    node = root
    for segment in segments[:-1]:
        name = _claim(node, segment)
        child = node.get(name)
        if child is None:
            child = _Group()
            node[name] = child
        elif not isinstance(child, _Group):
            raise WebhookFormatError("a key is both a value and a group")
        node = child
    name = _claim(node, segments[-1])
    if name in node:
        raise WebhookFormatError("a key is repeated or both a value and a group")
    node[name] = value


def _claim(node: _Group, segment: str) -> str:
    """The key `segment` names in `node`: `""` (`[]`) is the next free index."""
    if segment == "":
        segment = str(node.next_index)
    if _is_index(segment):
        node.next_index = max(node.next_index, int(segment) + 1)
    return segment


def _is_index(key: str) -> bool:
    if key == "0":
        return True
    return (
        0 < len(key) <= MAX_INDEX_DIGITS
        and key.isascii()
        and key.isdigit()
        and not key.startswith("0")
    )


def _finish(node: Any) -> Any:
    """Groups keyed only by indexes become lists in index order (depth ≤ MAX_DEPTH)."""
    if not isinstance(node, _Group):
        return node
    items = {key: _finish(child) for key, child in node.items()}
    if items and all(_is_index(key) for key in items):
        return [items[key] for key in sorted(items, key=int)]
    return items


def _entity_of(key: str, item: dict[str, Any]) -> str:
    if key == "contacts" and item.get("type") == "company":
        return "company"
    return ENTITIES.get(key, key)


def _segment(name: str) -> str:
    if not name or "[" in name or "]" in name:
        raise WebhookFormatError("a name must be non-empty and free of brackets")
    return name


def _flatten(prefix: str, value: Any, pairs: list[tuple[str, str]]) -> None:
    if value is None:
        return
    if isinstance(value, bool):
        pairs.append((prefix, "1" if value else "0"))
    elif isinstance(value, str):
        pairs.append((prefix, value))
    elif isinstance(value, int | float):
        pairs.append((prefix, str(value)))
    elif isinstance(value, Mapping):
        for key, child in value.items():
            _flatten(f"{prefix}[{_segment(str(key))}]", child, pairs)
    elif isinstance(value, list | tuple):
        for index, child in enumerate(value):
            _flatten(f"{prefix}[{index}]", child, pairs)
    else:
        raise WebhookFormatError(f"cannot encode a {type(value).__name__}")
