"""Pure ASGI middleware: request ids and the request body limit."""

from __future__ import annotations

import json
import re
import uuid

import structlog
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "x-request-id"
# A caller's id is echoed only when it is short and plain, so logs cannot be forged through it.
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def new_request_id() -> str:
    return uuid.uuid4().hex


def request_id_for(incoming: str) -> str:
    """The caller's X-Request-ID when sane, else a new one."""
    return incoming if _SANE_REQUEST_ID.match(incoming) else new_request_id()


class RequestIdMiddleware:
    """Takes X-Request-ID from the request when sane (else makes one), binds it to every log
    line of the request, exposes it as `scope["state"]["request_id"]` and echoes it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = ""
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = request_id_for(incoming)
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            await self.app(scope, receive, send_with_id)


class BodyLimitMiddleware:
    """Refuses bodies over `max_bytes` with 413 in the envelope, by Content-Length when given
    and by counting the stream otherwise, before any handler reads them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._reject(send)
                    return
        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not response_started:
                await self._reject(send)

    async def _reject(self, send: Send) -> None:
        await send_too_large(send, self.max_bytes)


async def send_too_large(send: Send, max_bytes: int) -> None:
    """413 in the envelope, closing the connection (the rest of the body is not read)."""
    body = json.dumps(
        {
            "success": False,
            "error": "Request body too large",
            "details": {"max_bytes": max_bytes},
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(HTTPException):
    """An HTTPException, so a framework that wraps body-parsing errors passes it through and
    the envelope handler renders it as 413 even when it is caught before reaching us."""

    def __init__(self) -> None:
        super().__init__(status_code=413, detail="Request body too large")


class TrailingSlashMiddleware:
    """`/api/v1/leads/unsorted/` is the same route as `/api/v1/leads/unsorted` (the original
    gateway answered both): the slash is dropped before routing, so no client ever meets a
    307 redirect (which some HTTP clients follow without the POST body)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and len(path) > 1 and path.endswith("/"):
            scope = dict(scope)
            scope["path"] = path.rstrip("/") or "/"
            raw = scope.get("raw_path")
            if isinstance(raw, bytes) and raw.endswith(b"/"):
                scope["raw_path"] = raw.rstrip(b"/") or b"/"
        await self.app(scope, receive, send)
