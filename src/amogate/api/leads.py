"""POST /api/v1/leads/unsorted — the original gateway's lead intake."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from amogate.api.auth import Principal, current_principal
from amogate.errors import InvalidJSON, ServiceUnavailable
from amogate.leads.schemas import parse_lead_request, request_json_schema

router = APIRouter(prefix="/api/v1/leads", tags=["leads"])

_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": request_json_schema()}},
    }
}


async def read_json(request: Request) -> Any:
    """Decode the body ourselves so a malformed body gets the original's 400 answer."""
    raw = await request.body()
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidJSON(details={"json_error": _json_error_text(exc)}) from None


def _json_error_text(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
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
