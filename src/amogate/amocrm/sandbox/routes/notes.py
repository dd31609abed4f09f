"""Notes on leads and contacts (amocrm-api.md §4.9).

`POST /api/v4/{leads|contacts}/{id}/notes` or `POST /api/v4/{leads|contacts}/notes` with
`entity_id` per item; `note_type` is required and must be a known type; `common` (and the
other text types) need `params.text`. An unknown entity → `NotSupportedChoice` on `entity_id`
(assumption). Lists: `GET .../{id}/notes` and `GET .../notes` with `filter[note_type][]` and
`filter[entity_id][]`; 204 when empty. Each note announces a `note_lead` / `note_contact`
webhook (webhook_items.py).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from amogate.amocrm.sandbox import render, webhook_items
from amogate.amocrm.sandbox.entities import Note
from amogate.amocrm.sandbox.responses import hal, no_content
from amogate.amocrm.sandbox.routes.common import int_list, listing, path_id, state_of
from amogate.amocrm.sandbox.seed import ADMIN_USER_ID
from amogate.amocrm.sandbox.state import SandboxState
from amogate.amocrm.sandbox.validation import Validation, read_batch, request_id_of

JSON = dict[str, Any]
TEXT_TYPES = frozenset({"common", "service_message", "sms_in", "sms_out"})
NOTE_TYPES = TEXT_TYPES | {
    "call_in",
    "call_out",
    "extended_service_message",
    "message_cashier",
    "geolocation",
    "attachment",
    "invoice_paid",
}


async def create_notes(request: Request) -> Response:
    state = state_of(request)
    entity_type = _entity_type(request)
    fixed_id = path_id(request) if "id" in request.path_params else None
    items = await read_batch(request)
    validation = Validation()
    for index, item in enumerate(items):
        errors = validation.item(request_id_of(item, index))
        if not isinstance(item, dict):
            errors.invalid_type("", "array")
            continue
        entity_id = fixed_id if fixed_id is not None else item.get("entity_id")
        if entity_id is None:
            errors.missing("entity_id")
        elif not _exists(state, entity_type, entity_id):
            errors.bad_choice("entity_id")
        note_type = item.get("note_type")
        if note_type is None:
            errors.missing("note_type")
        elif note_type not in NOTE_TYPES:
            errors.bad_choice("note_type")
        params = item.get("params")
        if params is not None and not isinstance(params, dict):
            errors.invalid_type("params", "array")
        elif note_type in TEXT_TYPES and not (params or {}).get("text"):
            errors.missing("params.text")
    validation.raise_if_failed()
    now = state.now()
    created = []
    for index, item in enumerate(items):
        entity_id = fixed_id if fixed_id is not None else int(item["entity_id"])
        note = Note(
            id=state.next_id("note"),
            entity_type=entity_type,
            entity_id=entity_id,
            note_type=item["note_type"],
            params=item.get("params") or {},
            created_by=int(item.get("created_by") or ADMIN_USER_ID),
            responsible_user_id=int(item.get("responsible_user_id") or ADMIN_USER_ID),
            created_at=int(item.get("created_at") or now),
            updated_at=now,
        )
        state.notes[note.id] = note
        webhook_items.note_added(state, note)
        created.append(
            {
                "id": note.id,
                "entity_id": entity_id,
                "request_id": request_id_of(item, index),
                "_links": render.href(state, f"{entity_type}/{entity_id}/notes/{note.id}"),
            }
        )
    return hal(
        {"_links": render.href(state, f"{entity_type}/notes"), "_embedded": {"notes": created}}
    )


async def list_notes(request: Request) -> Response:
    state = state_of(request)
    entity_type = _entity_type(request)
    rows = [n for n in state.notes.values() if n.entity_type == entity_type]
    if "id" in request.path_params:
        entity_id = path_id(request)
        rows = [n for n in rows if n.entity_id == entity_id]
    entity_ids = int_list(request, "filter[entity_id]")
    if entity_ids:
        rows = [n for n in rows if n.entity_id in entity_ids]
    types = request.query_params.getlist("filter[note_type][]") + request.query_params.getlist(
        "filter[note_type]"
    )
    if types:
        rows = [n for n in rows if n.note_type in types]
    return listing(request, [render.note(state, n) for n in rows], "notes")


async def get_note(request: Request) -> Response:
    state = state_of(request)
    note = state.notes.get(path_id(request, "note_id"))
    if (
        note is None
        or note.entity_id != path_id(request)
        or note.entity_type != _entity_type(request)
    ):
        return no_content()
    return hal(render.note(state, note))


def _entity_type(request: Request) -> str:
    return "leads" if request.url.path.startswith("/api/v4/leads/") else "contacts"


def _exists(state: SandboxState, entity_type: str, entity_id: Any) -> bool:
    if not isinstance(entity_id, int) or isinstance(entity_id, bool):
        return False
    store: dict[int, Any] = state.leads if entity_type == "leads" else state.contacts
    found = store.get(entity_id)
    return found is not None and not found.is_deleted


ROUTES = [
    Route(f"/api/v4/{entity}{tail}", handler, methods=[method])
    for entity in ("leads", "contacts")
    for tail, handler, method in (
        ("/notes", create_notes, "POST"),
        ("/notes", list_notes, "GET"),
        ("/{id:int}/notes", create_notes, "POST"),
        ("/{id:int}/notes", list_notes, "GET"),
        ("/{id:int}/notes/{note_id:int}", get_note, "GET"),
    )
]
