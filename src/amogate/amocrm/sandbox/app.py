"""The sandbox ASGI app: `create_sandbox_app(config, state)`; nothing is built at import time.

Unknown routes → 404 problem JSON `Cannot {METHOD} {url}`; a known route with another method →
405 problem JSON; success bodies are `application/hal+json`, errors `application/problem+json`.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from amogate.amocrm.sandbox.config import SandboxConfig
from amogate.amocrm.sandbox.middleware import SandboxMiddleware
from amogate.amocrm.sandbox.responses import ApiError, problem
from amogate.amocrm.sandbox.routes import (
    account,
    complex,
    control,
    leads,
    notes,
    oauth,
    unsorted,
    updates,
    webhooks,
)
from amogate.amocrm.sandbox.state import SandboxState


def create_sandbox_app(config: SandboxConfig, state: SandboxState | None = None) -> Starlette:
    """A sandbox account as an ASGI app; its state is `app.state.sandbox`."""
    sandbox = state if state is not None else SandboxState(config)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return problem(404, f"Cannot {request.method} {config.base_url}{request.url.path}")
        if exc.status_code == 405:
            return problem(405, "Method Not Allowed")
        return problem(exc.status_code, str(exc.detail))

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return exc.response

    app = Starlette(
        routes=[
            *oauth.ROUTES,
            *control.ROUTES,
            *account.ROUTES,
            *unsorted.ROUTES,
            *complex.ROUTES,
            *notes.ROUTES,
            *leads.ROUTES,
            *updates.ROUTES,
            *webhooks.ROUTES,
        ],
        middleware=[Middleware(SandboxMiddleware, state=sandbox)],
        exception_handlers={HTTPException: http_error, ApiError: api_error},
    )
    app.state.sandbox = sandbox
    return app
