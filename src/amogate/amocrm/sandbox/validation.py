"""Request bodies of write calls and amoCRM's per-item `validation-errors` (amocrm-api.md §3.1).

Writes are JSON arrays. Empty → 400 `Request data can not be empty`; more than 250 items →
422 `Limit 250 per page`. Each failing item gets one `validation-errors` entry keyed by its
`request_id` (the index as a string when the client sent none) with dotted paths inside it.
Assumption: one invalid item rejects the WHOLE request (400), nothing of the batch is stored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from amogate.amocrm.sandbox.responses import ApiError, problem

JSON = dict[str, Any]
MAX_BATCH = 250

DETAILS = {
    "FieldMissing": "This field is missing.",
    "NotSupportedChoice": "The value you selected is not a valid choice.",
}


async def read_json(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise ApiError(problem(400, "Request data can not be empty"))
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(problem(400, "Syntax error")) from None


async def read_batch(request: Request, max_items: int = MAX_BATCH) -> list[Any]:
    """The JSON array of a write call, with amoCRM's empty and size checks."""
    data = await read_json(request)
    if isinstance(data, dict):
        errors = Validation()
        errors.item("0").invalid_type("", "array")
        raise errors.error()
    if not isinstance(data, list) or not data:
        raise ApiError(problem(400, "Request data can not be empty"))
    if len(data) > max_items:
        raise ApiError(problem(422, f"Limit {max_items} per page"))
    return data


def request_id_of(item: Any, index: int) -> str:
    if isinstance(item, dict) and item.get("request_id") is not None:
        return str(item["request_id"])
    return str(index)


@dataclass
class ItemErrors:
    request_id: str
    errors: list[JSON] = field(default_factory=list)

    def add(self, code: str, path: str, detail: str | None = None) -> None:
        self.errors.append({"code": code, "path": path, "detail": detail or DETAILS[code]})

    def missing(self, path: str) -> None:
        self.add("FieldMissing", path)

    def bad_choice(self, path: str) -> None:
        self.add("NotSupportedChoice", path)

    def invalid_type(self, path: str, type_name: str) -> None:
        self.add("InvalidType", path, f"This value should be of type {type_name}.")

    def too_long(self, path: str, limit: int) -> None:
        self.add(
            "InvalidLength",
            path,
            f"This value is too long. It should have {limit} characters or less.",
        )


@dataclass
class Validation:
    items: list[ItemErrors] = field(default_factory=list)

    def item(self, request_id: str) -> ItemErrors:
        entry = ItemErrors(request_id)
        self.items.append(entry)
        return entry

    @property
    def failed(self) -> bool:
        return any(i.errors for i in self.items)

    def error(self) -> ApiError:
        failing = [{"request_id": i.request_id, "errors": i.errors} for i in self.items if i.errors]
        return ApiError(problem(400, "Request validation failed", **{"validation-errors": failing}))

    def raise_if_failed(self) -> None:
        if self.failed:
            raise self.error()
