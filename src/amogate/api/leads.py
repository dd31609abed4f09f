"""POST /api/v1/leads/unsorted — the original gateway's lead intake."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from amogate.api.auth import Principal, current_principal
from amogate.api.deps import database_of
from amogate.api.envelope import success
from amogate.errors import InvalidJSON, NotFound, ServiceUnavailable
from amogate.leads.reading import parse_lead_request
from amogate.leads.schemas import request_json_schema
from amogate.storage import deliveries

router = APIRouter(prefix="/api/v1/leads", tags=["leads"])

_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": request_json_schema()}},
    }
}


# Deeper JSON than this is refused: no form needs it, and deep nesting is how a body makes a
# parser (or later code that walks the value) exhaust the stack.
MAX_JSON_DEPTH = 32
_TOO_DEEP = f"JSON nested deeper than {MAX_JSON_DEPTH} levels"


async def read_json(request: Request) -> Any:
    """Decode the body ourselves so a malformed body gets the original's 400 answer."""
    raw = await request.body()
    # Only a body with more brackets than the limit can be too deep: most bodies skip the walk.
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and _too_deep(raw):
        raise InvalidJSON(details={"json_error": _TOO_DEEP})
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidJSON(details={"json_error": _json_error_text(exc)}) from None
    except RecursionError:  # belt and braces: the scan above should have caught it
        raise InvalidJSON(details={"json_error": _TOO_DEEP}) from None


def _too_deep(raw: bytes) -> bool:
    """Whether brackets outside strings nest deeper than `MAX_JSON_DEPTH` (no parsing, no
    recursion: strings are skipped whole by the regex engine, brackets counted)."""
    depth = 0
    for token in _STRING_OR_BRACKET.finditer(raw):
        char = token.group()[0]
        if char in _OPENERS:
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        elif char in _CLOSERS:
            depth -= 1
    return False


_STRING_OR_BRACKET = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_OPENERS = frozenset(b"[{")
_CLOSERS = frozenset(b"]}")


def _json_error_text(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    if isinstance(exc, RecursionError):
        return "Nested too deeply"
    return "Body is not valid UTF-8"


@router.post(
    "/unsorted",
    summary="Create an unsorted lead (form submission) in amoCRM",
    openapi_extra=_BODY_DOC,
)
async def create_unsorted(
    request: Request, principal: Annotated[Principal, Depends(current_principal)]
) -> JSONResponse:
    principal.require("leads:write")
    lead = parse_lead_request(await read_json(request))
    intake = getattr(request.app.state, "lead_intake", None)
    if intake is None:
        raise ServiceUnavailable("amoCRM delivery is not configured")
    result: JSONResponse = await intake.accept(request, principal, lead)
    return result


@router.get(
    "/deliveries/{delivery_id}",
    summary="The delivery of one accepted lead: status, attempts, next attempt, amoCRM ids",
)
async def get_delivery(
    delivery_id: str,
    request: Request,
    principal: Annotated[Principal, Depends(current_principal)],
) -> JSONResponse:
    principal.require("deliveries:read")
    # A key sees only the leads it sent; an admin key (or scope) sees every lead.
    owner = None if principal.is_admin else principal.key_id
    async with database_of(request).read() as conn:
        delivery = await deliveries.get(conn, delivery_id, api_key_id=owner)
        attempts = [] if delivery is None else await deliveries.attempts_of(conn, delivery_id)
    if delivery is None:
        raise NotFound(f"Delivery not found: {delivery_id}")
    return success("Delivery retrieved successfully", delivery_view(delivery, attempts))


def delivery_view(
    delivery: deliveries.Delivery, attempts: list[deliveries.Attempt]
) -> dict[str, Any]:
    """A delivery as the API, the CLI and the admin page show it (never a token or key)."""
    waiting = delivery.status in (deliveries.QUEUED, deliveries.RETRYING)
    return {
        "delivery_id": delivery.id,
        "status": delivery.status,
        "step": delivery.step,
        "lead_name": delivery.lead_name,
        "contact_name": delivery.contact_name,
        "created_at": _iso(delivery.created_at),
        "updated_at": _iso(delivery.updated_at),
        "next_attempt_at": _iso(delivery.next_attempt_at) if waiting else None,
        "give_up_at": _iso(delivery.give_up_at),
        "delivered_at": _iso(delivery.delivered_at),
        "personal_data_erased_at": _iso(delivery.erased_at),
        "attempts_count": delivery.attempts,
        "last_error": delivery.last_error,
        "error_details": delivery.error_details,
        "warnings": delivery.warnings,
        "amocrm": {
            "uid": delivery.amo_uid,
            "source_uid": delivery.id,
            "lead_id": delivery.amo_lead_id,
            "contact_id": delivery.amo_contact_id,
            "contact_matched": delivery.contact_matched,
            "note_id": delivery.amo_note_id,
        },
        "attempts": [
            {
                "at": _iso(a.started_at),
                "step": a.step,
                "outcome": a.outcome,
                "http_status": a.http_status,
                "duration_ms": a.duration_ms,
                "detail": a.detail,
            }
            for a in attempts
        ],
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
