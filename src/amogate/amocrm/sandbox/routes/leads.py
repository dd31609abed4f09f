"""Leads and contacts: create (arrays), get one, list with `query` (amocrm-api.md §4.6, §4.10).

Lists: `page`/`limit`, `query` (see search.py: substring over every filled field, letters
case-insensitive, phones by their digits as typed), `filter[id][]`,
`filter[created_at|updated_at][from|to]` (unix seconds, inclusive), leads also
`filter[pipeline_id]`, `order[id|created_at|updated_at]`, `with=contacts` on leads and
`with=leads` on contacts; no match → 204. A missing id → 204 (as clients observe). Contacts
that arrived with a not yet accepted unsorted item are left out of contact lists and searches
(amoCRM hides them until acceptance) but are readable by id, with `is_unsorted: true`.
Creating announces `add_lead` / `add_contact` webhooks (webhook_items.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from amogate.amocrm.sandbox import render, webhook_items
from amogate.amocrm.sandbox.drafts import (
    ContactDraft,
    LeadDraft,
    contact_draft,
    lead_draft,
    save_contact,
    save_lead,
)
from amogate.amocrm.sandbox.entities import Contact, Lead
from amogate.amocrm.sandbox.responses import hal, no_content
from amogate.amocrm.sandbox.routes.common import (
    int_list,
    listing,
    ordered,
    path_id,
    state_of,
    with_parts,
)
from amogate.amocrm.sandbox.search import matches_contact, matches_lead
from amogate.amocrm.sandbox.state import SandboxState
from amogate.amocrm.sandbox.validation import Validation, read_batch, request_id_of

JSON = dict[str, Any]
D = TypeVar("D")
T = TypeVar("T", Lead, Contact)


async def _create_batch(
    request: Request,
    entity: str,
    draft_of: Callable[[Any, JSON, Any], D],
    save: Callable[[Any, D], Any],
) -> Response:
    """amoCRM's batch create: validate every item (400 listing each failing one), then save
    them all and answer their ids with the `request_id`s echoed."""
    state = state_of(request)
    items = await read_batch(request)
    validation = Validation()
    drafts: list[tuple[str, D]] = []
    for index, item in enumerate(items):
        errors = validation.item(request_id_of(item, index))
        if not isinstance(item, dict):
            errors.invalid_type("", "array")
            continue
        drafts.append((request_id_of(item, index), draft_of(state, item, errors)))
    validation.raise_if_failed()
    created = []
    for request_id, draft in drafts:
        saved = save(state, draft)
        created.append(
            {
                "id": saved.id,
                "request_id": request_id,
                "_links": render.href(state, f"{entity}/{saved.id}"),
            }
        )
    return hal({"_links": render.href(state, entity), "_embedded": {entity: created}})


async def create_leads(request: Request) -> Response:
    return await _create_batch(request, "leads", lead_draft, _save_and_announce_lead)


async def list_leads(request: Request) -> Response:
    state = state_of(request)
    parts = with_parts(request)
    rows = [lead for lead in state.leads.values() if not lead.is_deleted]
    rows = _filtered(request, rows, matches_lead)
    pipelines = int_list(request, "filter[pipeline_id]")
    if pipelines:
        rows = [lead for lead in rows if lead.pipeline_id in pipelines]
    rows = ordered(request, rows, _ORDER_LEAD)
    return listing(request, [render.lead(state, lead, parts) for lead in rows], "leads")


async def get_lead(request: Request) -> Response:
    state = state_of(request)
    found = state.leads.get(path_id(request))
    if found is None or found.is_deleted:
        return no_content()
    return hal(render.lead(state, found, with_parts(request)))


async def create_contacts(request: Request) -> Response:
    return await _create_batch(request, "contacts", contact_draft, _save_and_announce_contact)


async def list_contacts(request: Request) -> Response:
    state = state_of(request)
    parts = with_parts(request)
    rows = [c for c in state.contacts.values() if not c.is_deleted and not c.is_unsorted]
    rows = _filtered(request, rows, matches_contact)
    rows = ordered(request, rows, _ORDER_CONTACT)
    return listing(request, [render.contact(state, c, parts) for c in rows], "contacts")


async def get_contact(request: Request) -> Response:
    state = state_of(request)
    found = state.contacts.get(path_id(request))
    if found is None or found.is_deleted:
        return no_content()
    return hal(render.contact(state, found, with_parts(request)))


def _save_and_announce_lead(state: SandboxState, draft: LeadDraft) -> Lead:
    lead = save_lead(state, draft)
    webhook_items.lead_added(state, lead)
    return lead


def _save_and_announce_contact(state: SandboxState, draft: ContactDraft) -> Contact:
    contact = save_contact(state, draft)
    webhook_items.contact_added(state, contact)
    return contact


def _filtered(request: Request, rows: list[T], matches: Callable[[str, T], bool]) -> list[T]:
    ids = int_list(request, "filter[id]")
    if ids:
        rows = [r for r in rows if r.id in ids]
    for stamp in ("created_at", "updated_at"):
        low = _stamp(request, f"filter[{stamp}][from]")
        high = _stamp(request, f"filter[{stamp}][to]")
        if low is not None:
            rows = [r for r in rows if getattr(r, stamp) >= low]
        if high is not None:
            rows = [r for r in rows if getattr(r, stamp) <= high]
    query = request.query_params.get("query", "")
    if query.strip():
        rows = [r for r in rows if matches(query, r)]
    return rows


def _stamp(request: Request, key: str) -> int | None:
    raw = request.query_params.get(key, "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() else None


_ORDER_LEAD: dict[str, Any] = {
    "id": lambda r: r.id,
    "created_at": lambda r: (r.created_at, r.id),
    "updated_at": lambda r: (r.updated_at, r.id),
}
_ORDER_CONTACT = _ORDER_LEAD

ROUTES = [
    Route("/api/v4/leads", list_leads, methods=["GET"]),
    Route("/api/v4/leads", create_leads, methods=["POST"]),
    Route("/api/v4/leads/{id:int}", get_lead, methods=["GET"]),
    Route("/api/v4/contacts", list_contacts, methods=["GET"]),
    Route("/api/v4/contacts", create_contacts, methods=["POST"]),
    Route("/api/v4/contacts/{id:int}", get_contact, methods=["GET"]),
]
