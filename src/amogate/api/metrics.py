"""GET /metrics: Prometheus text format. Open by default (keep it off the internet, e.g. with
nginx); METRICS_API_KEY_REQUIRED=true asks for a key with the `admin` scope."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from amogate.api.auth import current_principal
from amogate.api.deps import settings_of
from amogate.metrics import CONTENT_TYPE, GatewayMetrics

router = APIRouter(tags=["operations"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    if settings_of(request).metrics_api_key_required:
        principal = await current_principal(request)
        principal.require("admin")
    collected = request.app.state.metrics
    assert isinstance(collected, GatewayMetrics)
    await collected.refresh(getattr(request.app.state, "database", None))
    return Response(collected.render(), media_type=CONTENT_TYPE)
