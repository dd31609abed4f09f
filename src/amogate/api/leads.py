"""POST /api/v1/leads/unsorted — the original gateway's lead intake."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from amogate.access.keys import Principal
from amogate.accounts.config import DEFAULT
from amogate.api.auth import current_principal
from amogate.api.deps import account_of, database_of, gateway_of, settings_of
from amogate.api.envelope import error, success
from amogate.deliveries.service import Deliveries
from amogate.errors import InvalidJSON, NotFound, ServiceUnavailable, ValidationFailed
from amogate.leads.reading import parse_lead_request
from amogate.leads.schemas import request_json_schema
from amogate.leads.service import IntakeAnswer, Submission, idempotency_key

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
    received = await read_json(request)
    lead = parse_lead_request(received)
    submission = Submission(
        lead,
        received,
        api_key_id=principal.key_id,
        idempotency_key=idempotency_key(request.headers.get("idempotency-key")),
        request_id=getattr(request.state, "request_id", None),
    )
    if principal.account == DEFAULT and gateway_of(request).default is None:
        raise ServiceUnavailable("amoCRM delivery is not configured")
    account = await account_of(request, principal)
    answer: IntakeAnswer = await account.intake.accept(submission)
    return render_answer(answer)


DELIVERED_MESSAGE = "Unsorted lead created successfully"
QUEUED_MESSAGE = "Lead accepted and queued for delivery"
REPLAYED_HEADER = {"Idempotency-Replayed": "true"}


def render_answer(answer: IntakeAnswer) -> JSONResponse:
    """The intake's answer in the original gateway's envelope."""
    headers = REPLAYED_HEADER if answer.replayed else None
    match answer.outcome:
        case "delivered":
            return success(DELIVERED_MESSAGE, answer.data, headers=headers)
        case "queued":
            return success(QUEUED_MESSAGE, answer.data, status_code=202, headers=headers)
        case "refused":
            return error(422, ValidationFailed.message, answer.data, headers=headers)


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
    service = Deliveries.of(database_of(request), settings_of(request))
    record = await service.get(delivery_id, api_key_id=owner)
    if record is None:
        raise NotFound(f"Delivery not found: {delivery_id}")
    return success("Delivery retrieved successfully", record.view())
