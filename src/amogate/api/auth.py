"""X-API-KEY authentication, scopes, per-key origins and per-key rate limits.

The admin key comes from API_KEY; other keys are issued with `amogate keys create` and stored
as SHA-256 digests. Keys are compared as digests with `hmac.compare_digest`, so neither the
comparison time nor an early mismatch reveals how much of a guess was right.

Issued keys are looked up in the database on every request (one indexed read, no cache), so a
revocation made by any instance or by the CLI is seen by every instance at once. Per-key rate
limits are counted in the shared `rate_counters` table, so they hold across instances.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import structlog
from fastapi import Request
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from amogate.access.keys import (
    ACCOUNT_HEADER,
    Principal,
)
from amogate.api import envelope
from amogate.app_state import state_of
from amogate.storage import api_keys

log = structlog.get_logger("amogate.auth")

RATE_WINDOW_S = 60

# The scope each /api/v1 route family needs, checked for every route from its path template
# before the handler runs (handlers call `Principal.require` too). Longest prefix first; any
# /api/v1 route not listed needs `admin`, so a new route is closed until it is mapped.
ROUTE_SCOPES: tuple[tuple[str, str], ...] = (
    ("/api/v1/leads/deliveries", "deliveries:read"),
    ("/api/v1/deliveries", "deliveries:read"),
    ("/api/v1/leads", "leads:write"),
    ("/api/v1/info", "info:read"),
    ("/api/v1/diagnostics", "admin"),
)

CORS_REFUSED = "CORS request not allowed"


def required_scope(path_template: str) -> str | None:
    """The scope a route needs by its template; None outside /api/v1."""
    if path_template != "/api/v1" and not path_template.startswith("/api/v1/"):
        return None
    for prefix, scope in ROUTE_SCOPES:
        if path_template == prefix or path_template.startswith(prefix + "/"):
            return scope
    return "admin"


def _route_template(request: Request) -> str | None:
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


async def current_principal(request: Request) -> Principal:
    """FastAPI dependency for every /api/v1 route (and /metrics when it needs a key)."""
    template = _route_template(request)
    state = state_of(request.app)
    principal = await state.authenticator.resolve(
        state.running().database,
        request.headers.get("x-api-key"),
        origin=request.headers.get("origin"),
        global_origins=state.settings.cors_allowed_origins,
        scope=required_scope(template) if template else None,
    )
    # The account the call acts on: the key's own, or the one the admin names.
    principal = principal.acting_on(request.headers.get(ACCOUNT_HEADER))
    request.state.principal = principal
    return principal


class KeyOriginsCORSMiddleware(CORSMiddleware):
    """CORS for CORS_ALLOWED_ORIGINS plus the origins listed on active API keys.

    The key origins are read from the database at most every `refresh_seconds` per instance
    (only when a request comes from an origin outside the static list), so a new key's site may
    wait that long for its preflight; a revoked key's site may still pass a preflight for that
    long, but its actual requests are refused by the per-request key check."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        allow_origins: Sequence[str] = (),
        allow_methods: Sequence[str] = ("GET",),
        allow_headers: Sequence[str] = (),
        expose_headers: Sequence[str] = (),
        max_age: int = 600,
        refresh_seconds: float = 5.0,
    ) -> None:
        super().__init__(
            app,
            allow_origins=allow_origins,
            allow_methods=allow_methods,
            allow_headers=allow_headers,
            allow_credentials=False,
            expose_headers=expose_headers,
            max_age=max_age,
        )
        self._static = frozenset(self.allow_origins)
        self._key_origins: frozenset[str] = frozenset()
        self._loaded_at = -math.inf
        self._refresh_seconds = refresh_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            origin = Headers(scope=scope).get("origin")
            if origin is not None and origin not in self._static:
                await self._refresh(scope)
        await super().__call__(scope, receive, send)

    def is_allowed_origin(self, origin: str) -> bool:
        return origin in self._static or origin in self._key_origins

    def preflight_response(self, request_headers: Headers) -> Response:
        """A refused preflight in the JSON envelope, saying what would allow it, and a warning
        naming the refused origin (the browser only tells the site's visitor "CORS error")."""
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        details = self._refusal_details(request_headers)
        log.warning(
            "cors.refused",
            origin=request_headers["origin"][:200],
            refused=sorted(details),
            allow=details.get("origin"),
        )
        headers = {
            k: v for k, v in response.headers.items() if k.lower().startswith("access-control-")
        }
        return envelope.error(400, CORS_REFUSED, details, headers=headers)

    def _refusal_details(self, request_headers: Headers) -> dict[str, str]:
        origin = request_headers["origin"][:200]
        method = request_headers["access-control-request-method"][:20]
        details: dict[str, str] = {}
        if not self.is_allowed_origin(origin):
            details["origin"] = (
                f"{origin} is not allowed: add it to CORS_ALLOWED_ORIGINS, or give the site "
                f"its own key with `amogate keys create NAME --origin {origin}`"
            )
        if method not in self.allow_methods:
            details["method"] = f"{method} is not allowed: use {', '.join(self.allow_methods)}"
        requested = request_headers.get("access-control-request-headers")
        extra = [
            h.strip()
            for h in (requested or "").split(",")
            if h.strip() and h.strip().lower() not in self.allow_headers
        ]
        if extra:
            details["headers"] = (
                f"{', '.join(extra)[:200]} not allowed: send only Content-Type, X-API-KEY, "
                "Idempotency-Key and X-Request-ID"
            )
        return details or {"request": "the preflight was refused"}

    async def _refresh(self, scope: Scope) -> None:
        if time.monotonic() - self._loaded_at < self._refresh_seconds:
            return
        app = scope.get("app")
        gateway = state_of(app).gateway if isinstance(app, Starlette) else None
        if gateway is None:
            return
        database = gateway.database
        self._loaded_at = time.monotonic()
        try:
            async with database.read() as conn:
                origins = await api_keys.active_origins(conn)
        except Exception as exc:  # the static list still works without the database
            log.warning("cors.key_origins.unavailable", error=type(exc).__name__)
            return
        self._key_origins = frozenset(origins)
