"""`create_app(settings)`: the FastAPI application, built without import-time side effects.

The lifespan runs the gateway (`amogate.runtime.Gateway`: database, accounts, workers) for
as long as the app runs; nothing is created until the app starts. Routes reach it through the
typed state (`amogate.app_state`, `api/deps.py`).
"""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import structlog
from fastapi import FastAPI

from amogate import __version__
from amogate.access.admin import AdminAccess
from amogate.access.keys import ApiKeyAuthenticator
from amogate.api import diagnostics, forms, health, info, leads, oauth, ready, webhooks
from amogate.api import metrics as metrics_api
from amogate.api.auth import KeyOriginsCORSMiddleware
from amogate.api.docs import install_docs
from amogate.api.errors import install_error_handlers
from amogate.api.front import GatewayApp
from amogate.api.middleware import (
    BodyLimitMiddleware,
    RequestIdMiddleware,
    TrailingSlashMiddleware,
)
from amogate.app_state import AppState, state_of
from amogate.app_state import install as install_state
from amogate.metrics import GatewayMetrics, MetricsMiddleware
from amogate.runtime import Gateway
from amogate.settings import Settings
from amogate.storage.db import Database
from amogate.web import accounts as admin_accounts
from amogate.web import forms as admin_forms
from amogate.web import webhooks as admin_webhooks
from amogate.web.routes import install as install_admin

log = structlog.get_logger("amogate.app")

ALLOWED_HEADERS = ["Content-Type", "X-API-KEY", "Idempotency-Key", "X-Request-ID"]

API_DESCRIPTION = """
amogate turns amoCRM's API v4 and OAuth2 into a few simple REST endpoints.

Every answer uses one envelope:

* success: `{"success": true, "message": "...", "data": {...}}`
* error: `{"success": false, "error": "...", "details": {...}}`

Calls under `/api/v1` need the `X-API-KEY` header.
"""


def create_app(
    settings: Settings,
    *,
    database: Database | None = None,
    amo_transport: httpx.AsyncBaseTransport | None = None,
    background: bool = True,
    schema_ready: bool = False,
) -> FastAPI:
    """Build the gateway. `database` shares one engine (tests, CLI); `amo_transport` routes
    amoCRM traffic (tests use the in-process sandbox); `background=False` starts no keeper or
    worker tasks (tests that drive them step by step); `schema_ready`: `serve` already brought
    the schema up to date."""
    gateway_metrics = GatewayMetrics()  # per app: several apps may live in one process
    admin_password = settings.admin_password.get_secret_value() if settings.admin_password else ""
    admin_access = AdminAccess(admin_password or None)

    state = AppState(
        settings=settings,
        authenticator=ApiKeyAuthenticator(settings.api_key.get_secret_value()),
        metrics=gateway_metrics,
        admin_access=admin_access,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with Gateway.start(
            settings,
            database=database,
            transport=amo_transport,
            on_call=gateway_metrics.observe_amo_call,
            keeper=background,
            worker=background and state.run_worker,
            relay_metrics=gateway_metrics.relay,
            schema_ready=schema_ready,
        ) as gateway:
            await admin_access.start(gateway.database)
            state.gateway = gateway
            # Everything built so far lives as long as the process: keep it out of the garbage
            # collector's scans, which otherwise stall requests under load.
            gc.collect()
            gc.freeze()
            # Fewer, larger young-generation collections: a request allocates thousands of
            # short-lived objects, and the default threshold (700) collects many times each.
            gc.set_threshold(20_000, 20, 20)
            log.info(
                "gateway.started",
                version=__version__,
                amo=settings.amo_api_base or None,
                accounts=sorted(gateway.accounts),
            )
            try:
                yield
            finally:
                state.gateway = None

    # GatewayApp: FastAPI with a front door for /health and fresh cached reads (api/front.py).
    app = GatewayApp(
        title="amogate",
        version=__version__,
        description=API_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served from the package by install_docs, not from a CDN
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    app.router.redirect_slashes = False  # TrailingSlashMiddleware makes both one route
    install_state(app, state)

    install_error_handlers(app)
    install_docs(app)
    app.include_router(health.router)
    app.include_router(leads.router)
    app.include_router(forms.router)
    app.include_router(oauth.router)
    app.include_router(diagnostics.router)
    app.include_router(info.router)
    app.include_router(webhooks.router)
    install_admin(app, admin_access)
    app.include_router(admin_accounts.router)
    app.include_router(admin_forms.router)
    app.include_router(admin_webhooks.router)
    app.include_router(ready.router)
    app.include_router(metrics_api.router)

    # Middleware runs outside-in in reverse order of adding: trailing slash, metrics, request id,
    # then CORS (so preflights are answered before the body limit), then the body limit. CORS
    # allows CORS_ALLOWED_ORIGINS plus the origins listed on active API keys.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        KeyOriginsCORSMiddleware,
        allow_origins=settings.cors_allowed_origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=ALLOWED_HEADERS,
        expose_headers=[
            "X-Request-ID",
            "Retry-After",
            "Idempotency-Replayed",
            "ETag",
            "Age",
            "X-Cache",
        ],
        max_age=600,
    )
    app.add_middleware(forms.FormCORSMiddleware)  # a form's preflight: the form's own origins
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=gateway_metrics)
    app.add_middleware(TrailingSlashMiddleware)
    _document_envelope(app)
    return app


def create_app_from_environment() -> FastAPI:
    """The app of one process of `amogate serve --processes N`: settings from .env and the
    environment (validated by the CLI before it started the processes), logging configured
    here because each process is a fresh interpreter."""
    from amogate.logging import configure_logging

    settings = Settings()
    configure_logging(
        log_format=settings.log_format,
        level=settings.log_level,
        error_log_path=settings.error_log_path if settings.log_errors else None,
        error_log_max_bytes=settings.error_log_max_bytes,
    )
    app = create_app(settings, schema_ready=os.environ.get("AMOGATE_SCHEMA_READY") == "1")
    state_of(app).run_worker = os.environ.get("AMOGATE_RUN_WORKER", "1") != "0"
    return app


def _document_envelope(app: FastAPI) -> None:
    """Describe the envelope in /openapi.json so generated clients know the shapes."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["SuccessEnvelope"] = {
            "type": "object",
            "required": ["success", "message"],
            "properties": {
                "success": {"type": "boolean", "const": True},
                "message": {"type": "string"},
                "data": {"type": "object"},
            },
        }
        components["ErrorEnvelope"] = {
            "type": "object",
            "required": ["success", "error"],
            "properties": {
                "success": {"type": "boolean", "const": False},
                "error": {"type": "string"},
                "details": {"type": "object"},
            },
        }
        # Hand-written request bodies (the lead body) carry their models in `$defs` but refer
        # to them as #/components/schemas/<model>: publish them there so every $ref resolves.
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                for media in operation.get("requestBody", {}).get("content", {}).values():
                    components.update(media.get("schema", {}).get("$defs", {}))
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
