"""`page`/`limit` lists with HAL `_links` (amocrm-api.md §2.3).

`limit` defaults to 50 and is capped at 250; `_links.next` appears only when another page
exists and `prev` only after page 1; an empty result (including a page past the end) is 204.
Hrefs are absolute and carry every query parameter of the request plus `page` and `limit`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from starlette.requests import Request

DEFAULT_LIMIT = 50
MAX_LIMIT = 250
T = TypeVar("T")


@dataclass(frozen=True)
class Page:
    page: int
    limit: int

    @classmethod
    def of(cls, request: Request) -> Page:
        page = _int(request.query_params.get("page"), 1)
        limit = _int(request.query_params.get("limit"), DEFAULT_LIMIT)
        return cls(max(page, 1), min(max(limit, 1), MAX_LIMIT))

    def slice(self, items: list[T]) -> list[T]:
        start = (self.page - 1) * self.limit
        return items[start : start + self.limit]

    def count(self, total: int) -> int:
        return max(1, math.ceil(total / self.limit))


def links(base_url: str, request: Request, page: Page, total: int) -> dict[str, Any]:
    """`self`, and `next`/`prev` when they exist, for `request` at `page`."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in ("page", "limit")]

    def href(number: int) -> dict[str, str]:
        query = urlencode([*kept, ("page", str(number)), ("limit", str(page.limit))])
        return {"href": f"{base_url}{request.url.path}?{query}"}

    result = {"self": href(page.page)}
    if page.page * page.limit < total:
        result["next"] = href(page.page + 1)
    if page.page > 1:
        result["prev"] = href(page.page - 1)
    return result


def _int(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default
