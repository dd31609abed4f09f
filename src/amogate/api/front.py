"""`GatewayApp`: the FastAPI app with a front door for its hottest, simplest requests.

`GET /health` and fresh cached reads (`GET /api/v1/info/...` without a query string) are
answered here from prepared bytes, before the framework's middleware, routing and dependency
injection, which cost several times what the answer itself does (see README, Performance).
They keep everything the full path gives them: the request id (echoed or made), the metrics
and the access line, the API key check (same `ApiKeyAuthenticator.resolve`, same errors), the
ETag and `If-None-Match`. Anything else — another method or path, a query string, a trailing
slash, an `Origin` header (CORS), a copy that is missing or too old — goes the full way.
"""

from __future__ import annotations

import time

import structlog
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from amogate.api import info
from amogate.api.auth import ApiKeyAuthenticator, Principal
from amogate.api.errors import gateway_error_response
from amogate.api.health import HEALTH_BODY
from amogate.api.middleware import request_id_for
from amogate.errors import GatewayError
from amogate.info.cache import InfoCache
from amogate.metrics import GatewayMetrics
from amogate.storage.db import Database

log = structlog.get_logger("amogate.api")

HEALTH_PATH = "/health"
_JSON = (b"content-type", b"application/json")
_HEALTH_HEADERS = [_JSON, (b"content-length", str(len(HEALTH_BODY)).encode())]


class _Headers:
    """The few request headers the front door looks at, read in one pass."""

    __slots__ = ("api_key", "if_none_match", "origin", "request_id")

    def __init__(self, scope: Scope) -> None:
        self.request_id = ""
        self.origin: bytes | None = None
        self.api_key: str | None = None
        self.if_none_match: str | None = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                self.request_id = value.decode("latin-1")
            elif name == b"origin":
                self.origin = value
            elif name == b"x-api-key":
                self.api_key = value.decode("latin-1")
            elif name == b"if-none-match":
                self.if_none_match = value.decode("latin-1")


class GatewayApp(FastAPI):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path = scope["path"]
            if path == HEALTH_PATH or path in info.READS:
                started = time.perf_counter()
                headers = _Headers(scope)
                if headers.origin is None and await self._front(scope, send, headers, started):
                    return
        await super().__call__(scope, receive, send)

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
        cache = getattr(self.state, "info", None)
        database = getattr(self.state, "database", None)
        if (
            scope["query_string"]
            or not isinstance(cache, InfoCache)
            or not isinstance(database, Database)
        ):
            return False
        entry = cache.peek(read.kind)
        if entry is None or entry.stale:
            return False  # the full path fetches, or serves the old copy marked stale
        route = scope["path"]
        try:
            await self._authenticate(database, headers.api_key, request_id)
        except GatewayError as exc:
            if exc.status_code >= 500:
                log.warning("request.failed", status=exc.status_code, error=exc.message)
            response = gateway_error_response(exc)
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

    async def _authenticate(
        self, database: Database, presented: str | None, request_id: str
    ) -> Principal:
        """The same check as `current_principal` for a request without an Origin."""
        authenticator = self.state.authenticator
        assert isinstance(authenticator, ApiKeyAuthenticator)
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            return await authenticator.resolve(
                database,
                presented,
                origin=None,
                global_origins=self.state.settings.cors_allowed_origins,
                scope="info:read",
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

    def _record(self, route: str, status: int, started: float, request_id: str) -> None:
        metrics = self.state.metrics
        assert isinstance(metrics, GatewayMetrics)
        metrics.record_request(route, "GET", status, time.perf_counter() - started, request_id)
