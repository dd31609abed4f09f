"""The amoCRM API v4 client: one ``httpx.AsyncClient``, one request path, typed methods.

Every request takes a slot from the limiter once its token is ready, so a refresh never holds a
request back past its slot; it goes out with Bearer auth (refreshed once on a 401),
and any answer the caller cannot use becomes an ``AmoError`` (see ``errors``). Reads get one
short retry on a transient error when amoCRM asks for at most ``READ_RETRY_MAX_WAIT`` seconds;
writes are never repeated here, because the delivery worker owns retries of durable work.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Mapping, Sequence
from importlib import metadata
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import httpx

from amogate.amocrm.errors import (
    AmoBlockedError,
    AmoError,
    AmoPermanentError,
    AmoRateLimitedError,
    AmoTransientError,
    error_from_exception,
    error_from_response,
)
from amogate.amocrm.models import (
    ComplexResult,
    NoteResult,
    UnsortedResult,
    UpdateResult,
    complex_result,
    embedded,
    next_href,
    note_result,
    unsorted_result,
    update_result,
)
from amogate.amocrm.ratelimit import NoLimiter, OutboundLimiter

DEFAULT_TIMEOUT = httpx.Timeout(20.0, connect=5.0)
READ_RETRY_MAX_WAIT = 3.0
READ_RETRY_DEFAULT_WAIT = 0.5
MAX_BATCH = 250
MAX_COMPLEX = 50  # leads per POST /api/v4/leads/complex (amocrm-api.md §2.2)
MAX_PAGES = 500

OnCall = Callable[[str, int | None, float], None]
Params = list[tuple[str, str]]
JSON = dict[str, Any]
FilterValue = str | int | Sequence[str | int] | Mapping[str, str | int]
Entity = Literal["leads", "contacts", "companies"]
NoteEntity = Literal["leads", "contacts"]


SENT_AT = "amogate.sent_at"  # request extension: a list the slot's time is appended to


class SlotPerRequest(httpx.Auth):
    """Takes a budget slot for each request the wrapped auth flow sends, just before it leaves.

    The slot is taken after the flow has its token: a refresh (a database lock and a call to
    amoCRM's token endpoint) taken after the slot would hold the request back while the next
    slot's request leaves on time, and amoCRM would see the two together. A request repeated
    after a 401 takes its own slot, since amoCRM counts it like any other.
    """

    def __init__(self, inner: httpx.Auth, limiter: OutboundLimiter) -> None:
        self.inner = inner
        self.limiter = limiter
        self.requires_request_body = inner.requires_request_body
        self.requires_response_body = inner.requires_response_body

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("AmoClient works with httpx.AsyncClient only")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        flow = self.inner.async_auth_flow(request)
        try:
            outgoing = await flow.__anext__()
            while True:
                await self.limiter.acquire()
                sent_at = outgoing.extensions.get(SENT_AT)
                if isinstance(sent_at, list):
                    sent_at.append(time.perf_counter())
                response = yield outgoing
                try:
                    outgoing = await flow.asend(response)
                except StopAsyncIteration:
                    return
        finally:
            await flow.aclose()


def _user_agent() -> str:
    try:
        version = metadata.version("amogate")
    except metadata.PackageNotFoundError:
        version = "dev"
    return f"amogate/{version}"


class AmoClient:
    def __init__(
        self,
        base_url: str,
        *,
        auth: httpx.Auth,
        limiter: OutboundLimiter | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        on_call: OnCall | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        parts = urlsplit(base_url)
        if not parts.scheme or not parts.netloc:
            raise ValueError(f"base_url needs a scheme and a host: {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._limiter: OutboundLimiter = limiter or NoLimiter()
        self._on_call = on_call
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            auth=SlotPerRequest(auth, self._limiter),
            transport=transport,
            timeout=timeout,
            follow_redirects=False,
            headers={"User-Agent": _user_agent(), "Accept": "application/json"},
        )

    async def __aenter__(self) -> AmoClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- account, pipelines, fields ---------------------------------------------------------

    async def get_account(self, with_: Sequence[str] = ()) -> JSON:
        return await self._get_object("/api/v4/account", "/api/v4/account", _with(with_))

    async def list_pipelines(self) -> list[JSON]:
        path = "/api/v4/leads/pipelines"
        return await self._get_all(path, endpoint=path, key="pipelines")

    async def get_pipeline(self, pipeline_id: int) -> JSON:
        return await self._get_object(
            f"/api/v4/leads/pipelines/{int(pipeline_id)}", "/api/v4/leads/pipelines/{id}"
        )

    async def list_custom_fields(self, entity: Entity) -> list[JSON]:
        """All custom fields of ``entity``, following ``_links.next`` through every page."""
        return await self._get_all(
            f"/api/v4/{entity}/custom_fields",
            endpoint=f"/api/v4/{entity}/custom_fields",
            key="custom_fields",
            params=[("limit", "250")],
        )

    async def create_custom_fields(
        self, entity: Entity, items: Sequence[Mapping[str, Any]]
    ) -> list[JSON]:
        """The created fields (amoCRM's read shape plus ``request_id``), in amoCRM's order."""
        path = f"/api/v4/{entity}/custom_fields"
        body = await self._post(path, _with_request_ids(items), endpoint=path)
        return embedded(body, "custom_fields")

    async def list_users(self) -> list[JSON]:
        """Every user of the account (id, name, email, rights...), through every page."""
        return await self._get_all(
            "/api/v4/users", endpoint="/api/v4/users", key="users", params=[("limit", "250")]
        )

    # --- unsorted ----------------------------------------------------------------------------

    async def create_unsorted_forms(
        self, items: Sequence[Mapping[str, Any]]
    ) -> list[UnsortedResult]:
        path = "/api/v4/leads/unsorted/forms"
        body = await self._post(path, _with_request_ids(items), endpoint=path)
        return [unsorted_result(item) for item in embedded(body, "unsorted")]

    async def list_unsorted(
        self,
        *,
        page: int = 1,
        limit: int = 250,
        order: Mapping[str, str] | None = None,
        **filters: str | int | Sequence[str | int],
    ) -> list[JSON]:
        """One page of unsorted items. ``category=["forms"]`` → ``filter[category][]=forms``."""
        params = _page(page, limit) + _filters(filters) + _order(order)
        items, _ = await self._get_page(
            "/api/v4/leads/unsorted",
            endpoint="/api/v4/leads/unsorted",
            key="unsorted",
            params=params,
        )
        return items

    async def find_unsorted_by_source_uid(
        self,
        source_uid: str,
        *,
        pipeline_id: int | None = None,
        since: int | None = None,
        max_pages: int = 4,
        limit: int = 250,
    ) -> JSON | None:
        """The newest ``forms`` item whose ``source_uid`` matches, among recent items.

        amoCRM has no ``source_uid`` filter, so this pages through ``forms`` items newest first
        and stops after ``max_pages`` pages or at items created before ``since`` (unix seconds).
        """
        params = [*_page(1, limit), ("filter[category][]", "forms")]
        if pipeline_id is not None:
            params.append(("filter[pipeline_id]", str(pipeline_id)))
        params += _order({"created_at": "desc"})
        url: str = "/api/v4/leads/unsorted"
        page_params: Params | None = params
        for _ in range(max_pages):
            items, href = await self._get_page(
                url, endpoint="/api/v4/leads/unsorted", key="unsorted", params=page_params
            )
            for item in items:
                if item.get("source_uid") == source_uid:
                    return item
                created_at = item.get("created_at")
                if since is not None and isinstance(created_at, int) and created_at < since:
                    return None
            if href is None:
                return None
            url, page_params = self._follow(href), None
        return None

    async def get_unsorted(self, uid: str) -> JSON:
        return await self._get_object(
            f"/api/v4/leads/unsorted/{quote(uid, safe='')}", "/api/v4/leads/unsorted/{uid}"
        )

    # --- leads and contacts ------------------------------------------------------------------

    async def create_leads(self, items: Sequence[Mapping[str, Any]]) -> list[JSON]:
        """The created leads as ``{"id", "request_id", ...}``, in amoCRM's order."""
        body = await self._post("/api/v4/leads", _with_request_ids(items), endpoint="/api/v4/leads")
        return embedded(body, "leads")

    async def get_lead(self, lead_id: int, with_: Sequence[str] = ()) -> JSON:
        return await self._get_object(
            f"/api/v4/leads/{int(lead_id)}", "/api/v4/leads/{id}", _with(with_)
        )

    async def create_leads_complex(self, items: Sequence[Mapping[str, Any]]) -> list[ComplexResult]:
        """``POST /api/v4/leads/complex``: at most 50 leads, each with its new or linked contact.

        amoCRM answers a bare JSON array (not HAL); an answer that is not one is unreadable,
        and the write's outcome unknown.
        """
        if len(items) > MAX_COMPLEX:
            raise ValueError(f"at most {MAX_COMPLEX} leads per complex request, got {len(items)}")
        path = "/api/v4/leads/complex"
        response = await self._request("POST", path, endpoint=path, json=_with_request_ids(items))
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, list):
            raise error_from_response(response)
        return [complex_result(item) for item in body if isinstance(item, dict)]

    async def list_leads(
        self,
        query: str | None = None,
        *,
        page: int = 1,
        limit: int = 50,
        with_: Sequence[str] = (),
        order: Mapping[str, str] | None = None,
        **filters: FilterValue,
    ) -> list[JSON]:
        """One page of leads. ``created_at={"from": 1700000000}`` →
        ``filter[created_at][from]=1700000000``; ``id=[1, 2]`` → ``filter[id][]=1&...``."""
        params = _page(page, limit) + _with(with_) + _filters(filters) + _order(order)
        if query:
            params.append(("query", query))
        items, _ = await self._get_page(
            "/api/v4/leads", endpoint="/api/v4/leads", key="leads", params=params
        )
        return items

    async def create_contacts(self, items: Sequence[Mapping[str, Any]]) -> list[JSON]:
        path = "/api/v4/contacts"
        body = await self._post(path, _with_request_ids(items), endpoint=path)
        return embedded(body, "contacts")

    async def get_contact(self, contact_id: int, with_: Sequence[str] = ()) -> JSON:
        return await self._get_object(
            f"/api/v4/contacts/{int(contact_id)}", "/api/v4/contacts/{id}", _with(with_)
        )

    async def search_contacts(
        self, query: str, *, limit: int = 50, with_: Sequence[str] = ()
    ) -> list[JSON]:
        """The first page of amoCRM's full-text search (``[]`` when amoCRM answers 204).

        Hits are substrings of any field, and contacts of unaccepted unsorted items are left
        out, so the caller verifies every hit (``amogate.contacts.matching``).
        """
        if not query.strip():
            raise ValueError("an empty query would list every contact")
        params = [("query", query), *_page(1, limit), *_with(with_)]
        items, _ = await self._get_page(
            "/api/v4/contacts", endpoint="/api/v4/contacts", key="contacts", params=params
        )
        return items

    async def list_contacts(
        self,
        *,
        page: int = 1,
        limit: int = 250,
        order: Mapping[str, str] | None = None,
        **filters: FilterValue,
    ) -> tuple[list[JSON], bool]:
        """One page of contacts (``[]`` on 204) and whether amoCRM links a next page (its own
        page size may be smaller than ``limit``). ``updated_at={"from": 1700000000}`` →
        ``filter[updated_at][from]=1700000000``. Contacts of unaccepted unsorted items are
        not listed."""
        params = _page(page, limit) + _filters(filters) + _order(order)
        items, href = await self._get_page(
            "/api/v4/contacts", endpoint="/api/v4/contacts", key="contacts", params=params
        )
        return items, href is not None

    async def get_contacts(self, ids: Sequence[int], with_: Sequence[str] = ()) -> list[JSON]:
        """The contacts with these ids (``filter[id][]``), 250 ids per request; ids amoCRM
        does not list (deleted, or hidden in an unaccepted unsorted item) are simply absent."""
        wanted = list(dict.fromkeys(int(i) for i in ids))
        found: list[JSON] = []
        for start in range(0, len(wanted), MAX_BATCH):
            chunk = wanted[start : start + MAX_BATCH]
            params = [("filter[id][]", str(i)) for i in chunk]
            found += await self._get_all(
                "/api/v4/contacts",
                endpoint="/api/v4/contacts",
                key="contacts",
                params=[*params, ("limit", str(MAX_BATCH)), *_with(with_)],
            )
        return found

    async def update_contacts(self, items: Sequence[Mapping[str, Any]]) -> list[UpdateResult]:
        """Batch ``PATCH /api/v4/contacts``; each item names its contact by ``id``.

        A field given in ``custom_fields_values`` REPLACES that field's values in amoCRM, so
        adding a phone means sending the contact's current phones plus the new one.
        """
        for item in items:
            if not isinstance(item.get("id"), int) or isinstance(item.get("id"), bool):
                raise ValueError("every contact to update needs its integer id")
        path = "/api/v4/contacts"
        response = await self._request("PATCH", path, endpoint=path, json=_with_request_ids(items))
        body = _json_object(response)
        return [update_result(item) for item in embedded(body, "contacts")]

    # --- notes -------------------------------------------------------------------------------

    async def add_notes(
        self, entity: NoteEntity, notes: Sequence[Mapping[str, Any]]
    ) -> list[NoteResult]:
        path = f"/api/v4/{entity}/notes"
        body = await self._post(path, _with_request_ids(notes), endpoint=path)
        return [note_result(item) for item in embedded(body, "notes")]

    async def list_notes(self, entity: NoteEntity, entity_id: int) -> list[JSON]:
        return await self._get_all(
            f"/api/v4/{entity}/{int(entity_id)}/notes",
            endpoint=f"/api/v4/{entity}/{{id}}/notes",
            key="notes",
            params=[("limit", "250")],
        )

    # --- webhooks ----------------------------------------------------------------------------

    async def subscribe_webhook(self, destination: str, settings: Sequence[str]) -> JSON:
        """Register (or save again, which re-enables) a webhook; amoCRM's webhook object."""
        path = "/api/v4/webhooks"
        body = await self._post(
            path, {"destination": destination, "settings": list(settings)}, endpoint=path
        )
        return body or {}

    async def list_webhooks(self, destination: str | None = None) -> list[JSON]:
        """The account's webhooks (with `disabled`), only `destination`'s when given."""
        path = "/api/v4/webhooks"
        params: Params = [("filter[destination]", destination)] if destination else []
        page, _ = await self._get_page(path, endpoint=path, key="webhooks", params=params or None)
        return page

    # --- the one request path ----------------------------------------------------------------

    async def _get_object(self, url: str, endpoint: str, params: Params | None = None) -> JSON:
        response = await self._request("GET", url, endpoint=endpoint, params=params)
        return _json_object(response)

    async def _get_page(
        self, url: str, *, endpoint: str, key: str, params: Params | None
    ) -> tuple[list[JSON], str | None]:
        response = await self._request("GET", url, endpoint=endpoint, params=params)
        if response.status_code == 204:
            return [], None
        body = _json_object(response)
        return embedded(body, key), next_href(body)

    async def _get_all(
        self, url: str, *, endpoint: str, key: str, params: Params | None = None
    ) -> list[JSON]:
        items: list[JSON] = []
        seen: set[str] = set()
        page_params = params
        for _ in range(MAX_PAGES):
            page, href = await self._get_page(url, endpoint=endpoint, key=key, params=page_params)
            items.extend(page)
            if href is None:
                return items
            url, page_params = self._follow(href), None
            if url in seen:
                break
            seen.add(url)
        raise AmoPermanentError(f"pagination of {endpoint} does not end")

    async def _post(self, url: str, payload: Any, *, endpoint: str) -> JSON | None:
        response = await self._request("POST", url, endpoint=endpoint, json=payload)
        return None if response.status_code == 204 else _json_object(response)

    def _follow(self, href: str) -> str:
        """A ``_links.next`` target on our own origin: the token never goes to another host."""
        parts = urlsplit(href)
        path = parts.path or "/"
        return f"{self._origin}{path}" + (f"?{parts.query}" if parts.query else "")

    async def _request(
        self,
        method: str,
        url: str,
        *,
        endpoint: str,
        params: Params | None = None,
        json: Any = None,
    ) -> httpx.Response:
        if method != "GET":
            return await self._attempt(method, url, endpoint=endpoint, params=params, json=json)
        try:
            return await self._attempt(method, url, endpoint=endpoint, params=params, json=json)
        except AmoTransientError as exc:
            wait = READ_RETRY_DEFAULT_WAIT if exc.retry_after is None else exc.retry_after
            if wait > READ_RETRY_MAX_WAIT:
                raise
            await self._sleep(wait)
        return await self._attempt(method, url, endpoint=endpoint, params=params, json=json)

    async def _attempt(
        self,
        method: str,
        url: str,
        *,
        endpoint: str,
        params: Params | None,
        json: Any,
    ) -> httpx.Response:
        sent_at: list[float] = []  # when each request of this call left (SlotPerRequest)
        try:
            query = tuple(params) if params else None
            response = await self._http.request(
                method, url, params=query, json=json, extensions={SENT_AT: sent_at}
            )
        except httpx.HTTPError as exc:
            self._report(endpoint, None, sent_at)
            raise error_from_exception(exc) from None
        except AmoError:  # no slot (a 429 pause, a 403 cool-down) or no token
            self._report(endpoint, None, sent_at)
            raise
        self._report(endpoint, response.status_code, sent_at)
        if response.is_success:
            return response
        error = error_from_response(response)
        if isinstance(error, AmoRateLimitedError):
            await self._limiter.report_rate_limited(error.retry_after)
        elif isinstance(error, AmoBlockedError):
            await self._limiter.report_blocked()
        raise error

    def _report(self, endpoint: str, status: int | None, sent_at: list[float]) -> None:
        """One call to amoCRM for the metrics, timed from its first request's slot; a call that
        never left (no slot, no token) is not one."""
        if self._on_call is not None and sent_at:
            self._on_call(endpoint, status, time.perf_counter() - sent_at[0])


def _json_object(response: httpx.Response) -> JSON:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise error_from_response(response)
    return body


def _with(with_: Sequence[str]) -> Params:
    return [("with", ",".join(with_))] if with_ else []


def _page(page: int, limit: int) -> Params:
    return [("page", str(page)), ("limit", str(min(max(limit, 1), 250)))]


def _order(order: Mapping[str, str] | None) -> Params:
    return [(f"order[{key}]", value) for key, value in (order or {}).items()]


def _filters(filters: Mapping[str, FilterValue]) -> Params:
    params: Params = []
    for key, value in filters.items():
        if isinstance(value, str | int):
            params.append((f"filter[{key}]", str(value)))
        elif isinstance(value, Mapping):
            params.extend((f"filter[{key}][{sub}]", str(v)) for sub, v in value.items())
        else:
            params.extend((f"filter[{key}][]", str(v)) for v in value)
    return params


def _with_request_ids(items: Sequence[Mapping[str, Any]]) -> list[JSON]:
    """Items as amoCRM wants them, each with a ``request_id`` (its index when none was given)."""
    if not items:
        raise ValueError("nothing to send")
    if len(items) > MAX_BATCH:
        raise ValueError(f"at most {MAX_BATCH} items per request, got {len(items)}")
    return [
        dict(item) if "request_id" in item else {**item, "request_id": str(index)}
        for index, item in enumerate(items)
    ]
