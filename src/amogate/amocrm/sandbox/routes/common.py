"""Helpers shared by the routes: the state of the app serving a request, path ids, `with=`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from amogate.amocrm.sandbox.pagination import Page, links
from amogate.amocrm.sandbox.responses import ApiError, hal, no_content
from amogate.amocrm.sandbox.state import SandboxState

T = TypeVar("T")


def state_of(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


def path_id(request: Request, name: str = "id") -> int:
    """An integer path parameter; a non-number matches nothing, which amoCRM answers with 204."""
    raw = str(request.path_params[name])
    if not raw.isdigit():
        raise ApiError(no_content())
    return int(raw)


def with_parts(request: Request) -> set[str]:
    raw = request.query_params.get("with", "")
    return {part.strip() for part in raw.split(",") if part.strip()}


def int_list(request: Request, key: str) -> list[int]:
    """`filter[id][]=1&filter[id][]=2` or `filter[id]=1` as ints (non-numbers dropped)."""
    raw = request.query_params.getlist(f"{key}[]") + request.query_params.getlist(key)
    return [int(v) for v in raw if v.strip().lstrip("-").isdigit()]


def listing(
    request: Request, rows: list[dict[str, Any]], key: str, *, totals: bool = False
) -> Response:
    """One page of `rows` under `_embedded.{key}` with `_links`; 204 when the page is empty.

    `totals` adds `_total_items` and `_page_count`, which amoCRM sends on some lists only.
    """
    state = state_of(request)
    page = Page.of(request)
    chunk = page.slice(rows)
    if not chunk:
        return no_content()
    body: dict[str, Any] = {"_page": page.page}
    if totals:
        body = {"_total_items": len(rows), "_page": page.page, "_page_count": page.count(len(rows))}
    body["_links"] = links(state.config.base_url, request, page, len(rows))
    body["_embedded"] = {key: chunk}
    return hal(body)


def ordered(request: Request, rows: list[T], fields: dict[str, Callable[[T], Any]]) -> list[T]:
    """Apply `order[field]=asc|desc` for the fields a list supports; default is by id."""
    for name, key in fields.items():
        direction = request.query_params.get(f"order[{name}]")
        if direction in ("asc", "desc"):
            return sorted(rows, key=key, reverse=direction == "desc")
    return rows
