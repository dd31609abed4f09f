"""GET /health: exactly the original's answer; cheap, never touches amoCRM or the database."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])

HEALTH_BODY = b'{"success":true,"message":"Gateway is running","data":{"status":"ok"}}'


class _PrebuiltJSON(JSONResponse):
    def render(self, content: object) -> bytes:
        return HEALTH_BODY


@router.get("/health", summary="Is the gateway process up?", response_class=_PrebuiltJSON)
async def health() -> JSONResponse:
    return _PrebuiltJSON(None)
