"""`GatewayApp`: the FastAPI app with a front door for its hottest, simplest requests.

`GET /health` and fresh cached reads (`GET /api/v1/info/...` without a query string) are
answered here from prepared bytes, and `POST /api/v1/leads/unsorted` is handed to the same
intake as its route, before the framework's middleware, routing and dependency injection,
which cost several times what a cheap answer itself does (see README, Performance). They keep
everything the full path gives them: the request id (echoed or made, bound to log lines), the
metrics and the access line, the API key check (same `ApiKeyAuthenticator.resolve`, same
errors), the ETag and `If-None-Match`, the body limit, the error envelope. Anything else —
another method or path, a query string, a trailing slash, an `Origin` header (CORS), a body
without Content-Length or over the limit, a copy that is missing or too old — goes the full
way.
"""

from __future__ import annotations

import time

import structlog
from fastapi import FastAPI
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from amogate.access.keys import Principal
from amogate.api import envelope, info
from amogate.api.deps import account_of
from amogate.api.errors import gateway_error_response
from amogate.api.health import HEALTH_BODY
from amogate.api.leads import take_lead
from amogate.api.middleware import request_id_for, send_too_large
from amogate.app_state import AppState, state_of
from amogate.errors import GatewayError
from amogate.storage.db import Database

log = structlog.get_logger("amogate.api")

HEALTH_PATH = "/health"
LEADS_PATH = "/api/v1/leads/unsorted"
UNEXPECTED = "An unexpected error occurred"
_JSON = (b"content-type", b"application/json")
_HEALTH_HEADERS = [_JSON, (b"content-length", str(len(HEALTH_BODY)).encode())]


class _Headers:
    """The few request headers the front door looks at, read in one pass."""

    __slots__ = (
        "account",
        "api_key",
        "content_length",
        "idempotency_key",
        "if_none_match",
        "origin",
        "request_id",
    )

    def __init__(self, scope: Scope) -> None:
        self.request_id = ""
        self.origin: bytes | None = None
        self.api_key: str | None = None
        self.if_none_match: str | None = None
        self.idempotency_key: str | None = None
        self.content_length: bytes | None = None
        self.account: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                self.request_id = value.decode("latin-1")
            elif name == b"origin":
                self.origin = value
            elif name == b"x-api-key":
                self.api_key = value.decode("latin-1")
            elif name == b"if-none-match":
                self.if_none_match = value.decode("latin-1")
            elif name == b"idempotency-key":
                self.idempotency_key = value.decode("latin-1")
            elif name == b"content-length":
                self.content_length = value
            elif name == b"x-amo-account":
                self.account = value

    @property
    def simple(self) -> bool:
        """No CORS (Origin) and no admin acting on another account (X-Amo-Account)."""
        return self.origin is None and self.account is None


class GatewayApp(FastAPI):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path, method = scope["path"], scope["method"]
            if method == "GET" and (path == HEALTH_PATH or path in info.READS):
                started = time.perf_counter()
                headers = _Headers(scope)
                if headers.simple and await self._front(scope, send, headers, started):
                    return
            elif method == "POST" and path == LEADS_PATH:
                started = time.perf_counter()
                headers = _Headers(scope)
                if headers.simple and await self._lead(scope, receive, send, headers, started):
                    return
        await super().__call__(scope, receive, send)

    async def _lead(
        self, scope: Scope, receive: Receive, send: Send, headers: _Headers, started: float
    ) -> bool:
        """The intake, from the same `take_lead` as its route; False (nothing read or sent)
        when the request needs the full path."""
        state = self._state()
        if state is None or state.gateway is None:
            return False
        limit = int(state.settings.max_body_bytes)
        try:
            declared = int(headers.content_length or b"")
        except ValueError:
            return False
        if declared > limit or scope["query_string"]:
            return False
        request_id = request_id_for(headers.request_id)
        scope["app"] = self  # what the route's helpers read the running gateway from
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            status = await self._take_lead(
                Request(scope), receive, send, headers, request_id, state.gateway.database, limit
            )
        if status is not None:
            self._record(LEADS_PATH, status, started, request_id, method="POST")
        return True

    async def _take_lead(
        self,
        request: Request,
        receive: Receive,
        send: Send,
        headers: _Headers,
        request_id: str,
        database: Database,
        limit: int,
    ) -> int | None:
        """Answer the lead; its status (None when the client went away before the body)."""
        try:
            principal = await self._authenticate(
                database, headers.api_key, request_id, "leads:write"
            )
            body = await _read_body(receive, limit)
            if body is None:
                return None
            if isinstance(body, int):
                await send_too_large(send, limit)
                return 413
            response = await take_lead(
                request,
                principal,
                body,
                idempotency_header=headers.idempotency_key,
                request_id=request_id,
            )
        except GatewayError as exc:
            if exc.status_code >= 500:
                log.warning("request.failed", status=exc.status_code, error=exc.message)
            response = gateway_error_response(exc)
        except Exception as exc:
            # As the full path's handler: the traceback to the log, the request id to the caller.
            log.error(
                "request.unexpected_error",
                exc_type=type(exc).__name__,
                request_id=request_id,
                exc_info=exc,
            )
            response = envelope.error(500, UNEXPECTED)
        await self._send(
            send,
            response.status_code,
            list(response.raw_headers),
            bytes(response.body),
            request_id,
        )
        return response.status_code

    async def _front(self, scope: Scope, send: Send, headers: _Headers, started: float) -> bool:
        """Answer the request here and return True, or send nothing and return False."""
        path = scope["path"]
        request_id = request_id_for(headers.request_id)
        if path == HEALTH_PATH:
            if scope["query_string"]:
                return False
            await self._send(send, 200, list(_HEALTH_HEADERS), HEALTH_BODY, request_id)
            self._record(HEALTH_PATH, 200, started, request_id)
            return True
        return await self._read(scope, send, headers, request_id, started)

    async def _read(
        self, scope: Scope, send: Send, headers: _Headers, request_id: str, started: float
    ) -> bool:
        read = info.READS[scope["path"]]
        state = self._state()
        if scope["query_string"] or state is None or state.gateway is None:
            return False
        route = scope["path"]
        scope["app"] = self  # what the route's helpers read the running gateway from
        try:
            principal = await self._authenticate(
                state.gateway.database, headers.api_key, request_id, "info:read"
            )
            account = await account_of(Request(scope), principal)
            entry = account.info.peek(read.kind)
            if entry is None or entry.stale:
                # As the route: fetch, or serve the old copy marked stale, or the error.
                with structlog.contextvars.bound_contextvars(request_id=request_id):
                    fetched = await account.info.entry(read.kind)
                response = info.answer(read, fetched, headers.if_none_match)
                entry = None
        except GatewayError as exc:
            if exc.status_code >= 500:
                log.warning("request.failed", status=exc.status_code, error=exc.message)
            response = gateway_error_response(exc)
            entry = None
        if entry is None:
            await self._send(
                send,
                response.status_code,
                list(response.raw_headers),
                bytes(response.body),
                request_id,
            )
            self._record(route, response.status_code, started, request_id)
            return True
        answer = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in info.answer_headers(entry).items()
        ]
        if info.etag_matches(headers.if_none_match, entry.etag):
            await self._send(send, 304, answer, b"", request_id)
            self._record(route, 304, started, request_id)
            return True
        body = info.prepared_body(read, entry)
        answer += [_JSON, (b"content-length", str(len(body)).encode())]
        await self._send(send, 200, answer, body, request_id)
        self._record(route, 200, started, request_id)
        return True

    def _state(self) -> AppState | None:
        state = getattr(self.state, "amogate", None)
        return state if isinstance(state, AppState) else None

    async def _authenticate(
        self, database: Database, presented: str | None, request_id: str, scope: str
    ) -> Principal:
        """The same check as `current_principal` for a request without an Origin or an
        X-Amo-Account (so the principal acts on its own account)."""
        state = state_of(self)
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            return await state.authenticator.resolve(
                database,
                presented,
                origin=None,
                global_origins=state.settings.cors_allowed_origins,
                scope=scope,
            )

    @staticmethod
    async def _send(
        send: Send,
        status: int,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        request_id: str,
    ) -> None:
        headers.append((b"x-request-id", request_id.encode("latin-1")))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _record(
        self, route: str, status: int, started: float, request_id: str, method: str = "GET"
    ) -> None:
        state_of(self).metrics.record_request(
            route, method, status, time.perf_counter() - started, request_id
        )


async def _read_body(receive: Receive, limit: int) -> bytes | int | None:
    """The whole body; its size so far (int) once it passes `limit` (a Content-Length that
    lied); None when the client disconnected."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return size
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
