"""`PATCH /api/v4/{leads|contacts}` (array, each item with `id`) and `PATCH .../{id}` (object).

Rules in updates.py. Answers as amoCRM (and its PHP client, which reads `id` and `updated_at`):
the batch form `{"_links", "_embedded": {"leads": [{"id", "updated_at", "request_id",
"_links"}]}}`, the single form `{"id", "updated_at", "_links"}`. An empty body → 400
`Request data can not be empty`; more than 250 items → 422; a single PATCH whose body is not an
object → `InvalidType`. Changes announce `update_lead`/`status_lead`/`responsible_lead` and
`update_contact` webhooks (webhook_items.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from amogate.amocrm.sandbox import render, webhook_items
from amogate.amocrm.sandbox.entities import Contact, Lead
from amogate.amocrm.sandbox.responses import hal
from amogate.amocrm.sandbox.routes.common import path_id, state_of
from amogate.amocrm.sandbox.state import SandboxState
from amogate.amocrm.sandbox.updates import (
    ContactChange,
    LeadChange,
    apply_contact,
    apply_lead,
    contact_change,
    lead_change,
)
from amogate.amocrm.sandbox.validation import (
    ItemErrors,
    Validation,
    read_batch,
    read_json,
    request_id_of,
)

JSON = dict[str, Any]
C = TypeVar("C", LeadChange, ContactChange)
Check = Callable[[SandboxState, JSON, ItemErrors, Any], C | None]


async def patch_leads(request: Request) -> Response:
    return await _patch_batch(request, "leads", lead_change, _apply_lead)


async def patch_lead(request: Request) -> Response:
    return await _patch_one(request, "leads", lead_change, _apply_lead)


async def patch_contacts(request: Request) -> Response:
    return await _patch_batch(request, "contacts", contact_change, _apply_contact)


async def patch_contact(request: Request) -> Response:
    return await _patch_one(request, "contacts", contact_change, _apply_contact)


async def _patch_batch(
    request: Request,
    entity: str,
    check: Check[C],
    apply: Callable[[SandboxState, C], Lead | Contact],
) -> Response:
    state = state_of(request)
    items = await read_batch(request)
    validation = Validation()
    changes: list[tuple[str, C]] = []
    for index, item in enumerate(items):
        request_id = request_id_of(item, index)
        errors = validation.item(request_id)
        if not isinstance(item, dict):
            errors.invalid_type("", "array")
            continue
        change = check(state, item, errors, item.get("id"))
        if change is not None:
            changes.append((request_id, change))
    validation.raise_if_failed()
    done = []
    for request_id, change in changes:
        saved = apply(state, change)
        done.append({**_answer(state, entity, saved), "request_id": request_id})
    return hal({"_links": render.href(state, entity), "_embedded": {entity: done}})


async def _patch_one(
    request: Request,
    entity: str,
    check: Check[C],
    apply: Callable[[SandboxState, C], Lead | Contact],
) -> Response:
    state = state_of(request)
    entity_id = path_id(request)
    data = await read_json(request)
    validation = Validation()
    errors = validation.item("0")
    if not isinstance(data, dict):
        errors.invalid_type("", "object")
        raise validation.error()
    change = check(state, data, errors, entity_id)
    validation.raise_if_failed()
    assert change is not None
    return hal(_answer(state, entity, apply(state, change)))


def _apply_lead(state: SandboxState, change: LeadChange) -> Lead:
    before = webhook_items.LeadBefore.of(change.lead)
    if apply_lead(state, change):
        webhook_items.lead_changed(state, change.lead, before)
    return change.lead


def _apply_contact(state: SandboxState, change: ContactChange) -> Contact:
    if apply_contact(state, change):
        webhook_items.contact_changed(state, change.contact)
    return change.contact


def _answer(state: SandboxState, entity: str, saved: Lead | Contact) -> JSON:
    return {
        "id": saved.id,
        "updated_at": saved.updated_at,
        "_links": render.href(state, f"{entity}/{saved.id}"),
    }


ROUTES = [
    Route("/api/v4/leads", patch_leads, methods=["PATCH"]),
    Route("/api/v4/leads/{id:int}", patch_lead, methods=["PATCH"]),
    Route("/api/v4/contacts", patch_contacts, methods=["PATCH"]),
    Route("/api/v4/contacts/{id:int}", patch_contact, methods=["PATCH"]),
]
