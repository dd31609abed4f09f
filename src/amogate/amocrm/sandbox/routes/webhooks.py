"""Webhook subscriptions (amocrm-api.md §4.11): `POST/GET/DELETE /api/v4/webhooks`.

POST `{destination, settings, sort}` returns the webhook object (re-posting a destination
updates it and re-enables a disabled webhook, forgetting its failures); GET lists
`{_total_items, _embedded: {webhooks}}` with `filter[destination]`, 204 when none, and shows
`disabled`; DELETE with `{destination}` → 204 (pending retries to it stop). Assumptions:
unknown `settings` codes → `NotSupportedChoice`; at most 100 webhooks.
The sandbox SENDS webhooks in amoCRM's format for the events webhook_items.py lists, with the
timeout, retries and disable rule of webhook_policy.py (delivery: webhook_sender.py).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from amogate.amocrm.sandbox import render
from amogate.amocrm.sandbox.entities import Webhook
from amogate.amocrm.sandbox.responses import ApiError, hal, no_content, problem
from amogate.amocrm.sandbox.routes.common import state_of
from amogate.amocrm.sandbox.seed import ADMIN_USER_ID
from amogate.amocrm.sandbox.validation import Validation, read_json

JSON = dict[str, Any]
MAX_WEBHOOKS = 100
_ACTIONS = ("add", "update", "delete", "restore", "status", "responsible", "note")
SETTINGS = frozenset(
    [f"{a}_lead" for a in _ACTIONS]
    + [f"{a}_{e}" for e in ("contact", "company", "customer") for a in _ACTIONS if a != "status"]
    + ["add_task", "update_task", "delete_task", "responsible_task"]
    + ["add_unsorted", "update_unsorted", "delete_unsorted"]
    + ["add_talk", "update_talk", "add_message", "add_chat_template_review"]
)


async def subscribe(request: Request) -> Response:
    state = state_of(request)
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ApiError(problem(400, "Request data can not be empty"))
    validation = Validation()
    errors = validation.item("0")
    destination = data.get("destination")
    if destination is None:
        errors.missing("destination")
    elif not isinstance(destination, str) or not destination.startswith(("http://", "https://")):
        errors.bad_choice("destination")
    settings = data.get("settings")
    if not isinstance(settings, list) or not settings:
        errors.missing("settings")
    else:
        for i, code in enumerate(settings):
            if code not in SETTINGS:
                errors.bad_choice(f"settings.{i}")
    validation.raise_if_failed()
    assert isinstance(destination, str)
    assert isinstance(settings, list)
    now = state.now()
    found = next((w for w in state.webhooks.values() if w.destination == destination), None)
    if found is None:
        if len(state.webhooks) >= MAX_WEBHOOKS:
            raise ApiError(problem(400, "Webhooks limit exceeded"))
        found = Webhook(
            id=state.next_id("webhook"),
            destination=destination,
            settings=[str(s) for s in settings],
            sort=int(data.get("sort") or 1),
            created_by=ADMIN_USER_ID,
            created_at=now,
            updated_at=now,
        )
        state.webhooks[found.id] = found
    else:
        found.settings = [str(s) for s in settings]
        found.sort = int(data.get("sort") or found.sort)
        found.updated_at = now
        found.disabled = False
        state.sender.forget_failures(found.id)
    return hal(render.webhook(state, found))


async def list_webhooks(request: Request) -> Response:
    state = state_of(request)
    rows = list(state.webhooks.values())
    destination = request.query_params.get("filter[destination]")
    if destination is not None:
        rows = [w for w in rows if w.destination == destination]
    if not rows:
        return no_content()
    return hal(
        {
            "_total_items": len(rows),
            "_links": render.href(state, "webhooks"),
            "_embedded": {"webhooks": [render.webhook(state, w) for w in rows]},
        }
    )


async def unsubscribe(request: Request) -> Response:
    state = state_of(request)
    data = await read_json(request)
    destination = data.get("destination") if isinstance(data, dict) else None
    if not isinstance(destination, str):
        validation = Validation()
        validation.item("0").missing("destination")
        raise validation.error()
    for webhook in [w for w in state.webhooks.values() if w.destination == destination]:
        del state.webhooks[webhook.id]
    return no_content()


ROUTES = [
    Route("/api/v4/webhooks", subscribe, methods=["POST"]),
    Route("/api/v4/webhooks", list_webhooks, methods=["GET"]),
    Route("/api/v4/webhooks", unsubscribe, methods=["DELETE"]),
]
