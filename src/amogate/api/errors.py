"""Exception handlers: every error, ours or the framework's, leaves in the one envelope."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from amogate.api import envelope
from amogate.errors import AuthenticationFailed, GatewayError

log = structlog.get_logger("amogate.api")

# The original gateway's exact 401 body (it has "message" where other errors have "details").
UNAUTHORIZED_BODY = {
    "success": False,
    "error": "Invalid or missing API key",
    "message": "Please provide valid X-API-KEY header",
}

_STATUS_MESSAGES = {
    405: "Method not allowed",
    406: "Not acceptable",
    413: "Request body too large",
    415: "Unsupported media type",
}


def dotted_path(loc: tuple[int | str, ...] | list[int | str]) -> str:
    """('body', 'lead', 'name') -> 'lead.name' (the original gateway's detail keys)."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "request"


def gateway_error_response(exc: GatewayError) -> JSONResponse:
    if isinstance(exc, AuthenticationFailed):
        return JSONResponse(UNAUTHORIZED_BODY, status_code=401)
    return envelope.error(exc.status_code, exc.message, exc.details, retry_after=exc.retry_after)


async def _gateway_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GatewayError)
    if exc.status_code >= 500:
        log.warning("request.failed", status=exc.status_code, error=exc.message)
    return gateway_error_response(exc)


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        message = f"Endpoint not found: {request.url.path}"
    else:
        message = _STATUS_MESSAGES.get(exc.status_code) or (
            exc.detail if isinstance(exc.detail, str) else "Request failed"
        )
    return envelope.error(exc.status_code, message, headers=exc.headers)


async def _request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors: list[dict[str, Any]] = list(exc.errors())
    for err in errors:
        if err.get("type") == "json_invalid":
            ctx = err.get("ctx") or {}
            return envelope.error(
                400, "Invalid JSON", {"json_error": str(ctx.get("error", "malformed JSON"))}
            )
    details: dict[str, str] = {}
    for err in errors:
        details.setdefault(dotted_path(err.get("loc", ())), str(err.get("msg", "Invalid value")))
    return envelope.error(422, "Validation failed", details)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The traceback goes to the log (redacted); the caller gets no exception text, but the
    # request id to quote. This runs outside the middleware that binds and echoes the id.
    request_id = request.scope.get("state", {}).get("request_id")
    log.error(
        "request.unexpected_error",
        exc_type=type(exc).__name__,
        request_id=request_id,
        exc_info=exc,
    )
    headers = {"X-Request-ID": request_id} if isinstance(request_id, str) else None
    return envelope.error(500, "An unexpected error occurred", headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(Exception, _unexpected)
