"""GET /api/v1/info/*: pipelines, custom fields, users and the account, for building forms.

Answers come from `InfoCache` (see `amogate.info.cache`): at most one amoCRM fetch per kind
per INFO_CACHE_TTL seconds, `?refresh=true` to fetch now, an older copy marked
`"stale": true, "age_seconds": N` when amoCRM fails, and a clear 503/504/502 when there is no copy.

HTTP caching: every 200 carries an `ETag` (a hash of `data`) and `Cache-Control: private,
no-cache`; a request whose `If-None-Match` matches gets `304 Not Modified` with an empty body.
A stale answer's tag is weak (`W/"..."`): its body carries `stale`/`age_seconds`, so it is
equivalent but not byte-identical to the fresh answer. Whether the answer came from memory is
in the `X-Cache` header (`HIT`, `MISS` or `STALE`) and how old it is in `Age`; fresh bodies
carry no such fields, so equal data always gives byte-equal bodies under one strong tag.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from amogate.access.keys import Principal
from amogate.api import envelope
from amogate.api.auth import current_principal
from amogate.api.deps import account_of
from amogate.info.cache import CacheEntry, InfoCache, Kind

router = APIRouter(prefix="/api/v1/info", tags=["info"])

Refresh = Annotated[
    bool,
    Query(description="Fetch from amoCRM now instead of answering from the cache."),
]

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The data, in the envelope. A stale copy adds `stale` and "
        "`age_seconds` next to `data`.",
        "headers": {
            "ETag": {
                "description": "Hash of `data` (weak when stale)",
                "schema": {"type": "string"},
            },
            "X-Cache": {"description": "HIT, MISS or STALE", "schema": {"type": "string"}},
            "Age": {"description": "Seconds since amoCRM answered", "schema": {"type": "integer"}},
        },
    },
    304: {"description": "Not Modified: `If-None-Match` matches the current ETag"},
    401: {"description": "Invalid or missing API key"},
    502: {"description": "amoCRM returned an error"},
    503: {
        "description": "amoCRM is unavailable, rate-limited, or not connected (no cached "
        "copy to serve); `Retry-After` when known"
    },
    504: {"description": "amoCRM did not answer in time (no cached copy to serve)"},
}


async def _read(
    request: Request, principal: Principal, kind: Kind, refresh: bool
) -> tuple[InfoCache, CacheEntry]:
    principal.require("info:read")
    cache = (await account_of(request, principal)).info
    return cache, await cache.entry(kind, force_refresh=refresh)


@dataclass(frozen=True)
class Read:
    """One cached read: the kind it answers from, its message, the shape of its `data`, and
    its route's documentation (the list reads' routes are made from this table)."""

    kind: Kind
    message: str
    shape: Callable[[Any], Any]
    summary: str = ""
    description: str = ""


def _pipelines_data(value: Any) -> Any:
    return {"_embedded": {"pipelines": value}}


def _fields_data(value: Any) -> Any:
    return {"_embedded": {"custom_fields": value}}


def _users_data(value: Any) -> Any:
    return {"_embedded": {"users": value}}


def _as_is(value: Any) -> Any:
    return value


# The reads by path; `amogate.api.front` answers fresh cached ones before the framework.
READS: dict[str, Read] = {
    "/api/v1/info/pipelines": Read(
        "pipelines",
        "Pipelines retrieved successfully",
        _pipelines_data,
        "All pipelines with their statuses",
        "amoCRM's pipelines, each with `_embedded.statuses`: the ids a form needs for "
        "`pipeline_id` and `lead.status_id`.",
    ),
    "/api/v1/info/lead-fields": Read(
        "lead_fields",
        "Lead fields retrieved successfully",
        _fields_data,
        "All lead custom fields (every page)",
        "Every custom field of leads, fetched across all of amoCRM's pages, with `enums` for "
        "select fields: the `field_id`s, `field_code`s and enum ids a form needs.",
    ),
    "/api/v1/info/contact-fields": Read(
        "contact_fields",
        "Contact fields retrieved successfully",
        _fields_data,
        "All contact custom fields (every page)",
        "Every custom field of contacts (PHONE, EMAIL, ...), across all pages.",
    ),
    "/api/v1/info/account": Read(
        "account",
        "Account info retrieved successfully",
        _as_is,
        "The connected amoCRM account",
        "`id`, `name`, `subdomain`, `currency`, `timezone` (lifted from "
        "`_embedded.datetime_settings`) and the rest of amoCRM's account object.",
    ),
    "/api/v1/info/users": Read(
        "users",
        "Users retrieved successfully",
        _users_data,
        "The account's users (every page)",
        "Every user of the account as `id`, `name`, `email`: the ids a form or bot can give as "
        "`lead.responsible_user_id`. Cached like the other lists.",
    ),
}
_PIPELINE = Read("pipelines", "Pipeline retrieved successfully", _as_is)

# Fresh answers' bodies by (message, ETag): equal data gives byte-equal bodies, so each is
# rendered once, not on every request. Bounded: cleared when it grows past a few versions.
_PREPARED: dict[tuple[str, str], bytes] = {}
_PREPARED_MAX = 64


def prepared_body(read: Read, entry: CacheEntry) -> bytes:
    """The envelope of a fresh entry, rendered once per version of the data."""
    key = (read.message, entry.etag)
    body = _PREPARED.get(key)
    if body is None:
        if len(_PREPARED) >= _PREPARED_MAX:
            _PREPARED.clear()
        body = bytes(envelope.success(read.message, read.shape(entry.value)).body)
        _PREPARED[key] = body
    return body


def answer_headers(entry: CacheEntry) -> dict[str, str]:
    etag = f"W/{entry.etag}" if entry.stale else entry.etag
    return {
        "ETag": etag,
        "Cache-Control": "private, no-cache",
        "Age": str(int(entry.age_seconds)),
        "X-Cache": "STALE" if entry.stale else ("HIT" if entry.cached else "MISS"),
    }


def _answer(request: Request, read: Read, entry: CacheEntry) -> Response:
    return answer(read, entry, request.headers.get("if-none-match"))


def answer(read: Read, entry: CacheEntry, if_none_match: str | None) -> Response:
    """The answer for `entry`: 304 when `If-None-Match` matches, the prepared body when fresh,
    the envelope with `stale` and `age_seconds` when not."""
    headers = answer_headers(entry)
    if etag_matches(if_none_match, headers["ETag"]):
        return Response(status_code=304, headers=headers)
    if not entry.stale:
        body = prepared_body(read, entry)
        return Response(body, headers=headers, media_type="application/json")
    extra = {"stale": True, "age_seconds": int(entry.age_seconds)}
    data = read.shape(entry.value)
    return envelope.success(read.message, data, headers=headers, extra=extra)


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison, as If-None-Match requires."""
    if not if_none_match:
        return False
    opaque = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == opaque:
            return True
    return False


def _list_route(read: Read) -> Callable[..., Awaitable[Response]]:
    async def route(
        request: Request,
        principal: Annotated[Principal, Depends(current_principal)],
        refresh: Refresh = False,
    ) -> Response:
        _, entry = await _read(request, principal, read.kind, refresh)
        return _answer(request, read, entry)

    route.__name__ = read.kind  # the OpenAPI operation id, as when each was written out
    return route


for _path, _list in READS.items():
    router.add_api_route(
        _path.removeprefix(router.prefix),
        _list_route(_list),
        methods=["GET"],
        summary=_list.summary,
        description=_list.description,
        responses=_RESPONSES,
        response_class=JSONResponse,
    )


@router.get(
    "/pipelines/{id}",
    summary="One pipeline with its statuses",
    description="Answered from the cached pipeline list; an id not in it makes one upstream "
    "look-up (at most one per 10 s, shared by concurrent requests) before answering 404, so a "
    "pipeline created a minute ago is found. `?refresh=true` re-reads the list first.",
    responses={
        **_RESPONSES,
        404: {"description": "Pipeline not found"},
        422: {"description": "The id is not a positive integer"},
    },
    response_class=JSONResponse,
)
async def pipeline(
    request: Request,
    principal: Annotated[Principal, Depends(current_principal)],
    pipeline_id: Annotated[int, Path(alias="id", gt=0, description="amoCRM pipeline id")],
    refresh: Refresh = False,
) -> Response:
    principal.require("info:read")
    entry = await (await account_of(request, principal)).info.pipeline_entry(
        pipeline_id, force_refresh=refresh
    )
    return _answer(request, _PIPELINE, entry)
