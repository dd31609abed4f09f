"""Leads and contacts: create (arrays), get one, list with `query` (amocrm-api.md §4.6, §4.10).

Lists: `page`/`limit`, `query` (case-insensitive substring over name and every field value —
amoCRM's full-text search is looser than exact, e.g. a phone's national part finds it),
`filter[id][]`, `order[id|created_at|updated_at]`; no match → 204. A missing id → 204 (as
clients observe). Contacts that arrived with a not yet accepted unsorted item are left out of
contact lists (amoCRM hides them until acceptance).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from amogate.amocrm.sandbox import render
from amogate.amocrm.sandbox.drafts import contact_draft, lead_draft, save_contact, save_lead
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
from amogate.amocrm.sandbox.validation import Validation, read_batch, request_id_of
from amogate.amocrm.sandbox.values import field_text

JSON = dict[str, Any]
D = TypeVar("D")


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
    return await _create_batch(request, "leads", lead_draft, save_lead)


async def list_leads(request: Request) -> Response:
    state = state_of(request)
    parts = with_parts(request)
    rows = [lead for lead in state.leads.values() if not lead.is_deleted]
    rows = _filtered(request, rows, _lead_text)
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
    return await _create_batch(request, "contacts", contact_draft, save_contact)


async def list_contacts(request: Request) -> Response:
    state = state_of(request)
    parts = with_parts(request)
    rows = [c for c in state.contacts.values() if not c.is_deleted and not c.is_unsorted]
    rows = _filtered(request, rows, _contact_text)
    rows = ordered(request, rows, _ORDER_CONTACT)
    return listing(request, [render.contact(state, c, parts) for c in rows], "contacts")


async def get_contact(request: Request) -> Response:
    state = state_of(request)
    found = state.contacts.get(path_id(request))
    if found is None or found.is_deleted:
        return no_content()
    return hal(render.contact(state, found, with_parts(request)))


def _filtered(request: Request, rows: list[Any], text_of: Any) -> list[Any]:
    ids = int_list(request, "filter[id]")
    if ids:
        rows = [r for r in rows if r.id in ids]
    query = request.query_params.get("query", "").strip().lower()
    if query:
        rows = [r for r in rows if any(query in t.lower() for t in text_of(r))]
    return rows


def _lead_text(lead: Lead) -> list[str]:
    return [lead.name, str(lead.id), str(lead.price), *field_text(lead.custom_fields_values)]


def _contact_text(contact: Contact) -> list[str]:
    return [
        contact.name,
        contact.first_name,
        contact.last_name,
        *field_text(contact.custom_fields_values),
    ]


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
