"""GET /metrics: Prometheus text format, for an admin key only unless METRICS_PUBLIC=true.

The key comes as `X-API-KEY` or as `Authorization: Bearer <key>` (what Prometheus's
`authorization` / `bearer_token_file` settings send). Queue depth, delivery counts and the
token's state are read from the database at most once per `SNAPSHOT_TTL` seconds per process,
so scrapes (or anyone hammering the endpoint) cost a few queries every few seconds at most.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from amogate.api.deps import app_state, database_of, settings_of
from amogate.errors import AuthenticationFailed
from amogate.metrics import CONTENT_TYPE

router = APIRouter(tags=["operations"])

SNAPSHOT_TTL = 5.0


def presented_key(request: Request) -> str | None:
    """The key in X-API-KEY, else in `Authorization: Bearer <key>`."""
    key = request.headers.get("x-api-key")
    if key:
        return key
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


@router.get(
    "/metrics",
    summary="Prometheus metrics (admin key, unless METRICS_PUBLIC=true)",
    response_class=Response,
    responses={401: {"description": "No admin key (X-API-KEY or Authorization: Bearer)"}},
)
async def metrics(request: Request) -> Response:
    settings = settings_of(request)
    if not settings.metrics_public:
        key = presented_key(request)
        if key is None:
            raise AuthenticationFailed()
        principal = await app_state(request).authenticator.resolve(
            database_of(request),
            key,
            origin=request.headers.get("origin"),
            global_origins=settings.cors_allowed_origins,
            scope="admin",
        )
        principal.require("admin")
    state = app_state(request)
    gateway = state.gateway
    await state.metrics.refresh(
        gateway.database if gateway is not None else None,
        sorted(gateway.accounts) if gateway is not None else (),
        max_age=SNAPSHOT_TTL,
    )
    collected = state.metrics
    return Response(collected.render(), media_type=CONTENT_TYPE)
