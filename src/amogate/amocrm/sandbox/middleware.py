"""The front door of the sandbox: request log, faults, budget and bearer check, in that order.

Everything outside `/_sandbox` is logged. `/api/v4/*` and `/oauth2/*` then meet injected faults,
the per-token budget (429 / 403 block) and, for `/api/v4/*`, the bearer-token check (401), before
a route runs. The control API under `/_sandbox` is exempt from all of it and never counted.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from amogate.amocrm.sandbox.budget import Verdict
from amogate.amocrm.sandbox.faults import FAULTABLE_PREFIXES, Fault
from amogate.amocrm.sandbox.responses import (
    nginx_page,
    problem,
    server_error,
    too_many_requests,
    unauthorized,
)
from amogate.amocrm.sandbox.state import SandboxState

# Set in the ASGI scope by server.py's protocol: drops the TCP connection without an answer.
ABORT_EXTENSION = "amogate.sandbox.abort"
MAX_HANG_S = 300.0
MAX_LOGGED_TEXT = 10_000


class ConnectionDropped(ConnectionAbortedError):
    """`down` without a way to drop the connection (plain ASGI use): the app fails instead."""


def parse_body(raw: bytes, content_type: str) -> Any:
    """The body as the log shows it: parsed JSON, a form as a dict, else (truncated) text."""
    if not raw:
        return None
    if "application/x-www-form-urlencoded" in content_type:
        form = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[0] if len(v) == 1 else v for k, v in form.items()}
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")[:MAX_LOGGED_TEXT]


def bearer_of(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            text: str = value.decode("latin-1")
            scheme, _, token = text.partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


def budget_key(scope: Scope, body: Any) -> str:
    """Who pays for a request: its bearer token, else its OAuth client id, else its address."""
    token = bearer_of(scope)
    if token is not None:
        return "token:" + hashlib.sha256(token.encode()).hexdigest()[:12]
    if isinstance(body, dict) and isinstance(body.get("client_id"), str):
        return "client:" + str(body["client_id"])
    client = scope.get("client") or ("unknown", 0)
    return f"ip:{client[0]}"


class SandboxMiddleware:
    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        # amoCRM counts requests as they arrive: the log keeps the arrival time, not the time
        # the answer was finished (a busy sandbox would otherwise bunch slow answers together).
        arrived = self.state.clock()
        started = time.perf_counter()
        raw = await _read_body(receive)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        body = parse_body(raw, headers.get("content-type", ""))
        status: list[int | None] = [None]
        fault_name: str | None = None

        pending = [raw]

        async def replay() -> Message:
            if pending:
                return {"type": "http.request", "body": pending.pop(), "more_body": False}
            return await receive()

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            fault_name = await self._handle(scope, replay, send_wrapper, body, receive)
        finally:
            self.state.log.record(
                time=arrived,
                method=scope["method"],
                path=scope["path"],
                query=scope.get("query_string", b"").decode("latin-1"),
                body=body,
                status=status[0],
                fault=fault_name,
                client=budget_key(scope, body),
                duration_ms=(time.perf_counter() - started) * 1000,
            )

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, body: Any, wire: Receive
    ) -> str | None:
        """Run the request; returns the name of the fault it met, if any.

        `receive` replays the already read body to the app; `wire` is the server's own
        `receive`, watched for the client hanging up while a `timeout` fault holds the request.
        """
        path: str = scope["path"]
        if not path.startswith(FAULTABLE_PREFIXES):
            await self.app(scope, receive, send)
            return None
        fault = self.state.faults.take(path)
        if fault is not None and fault.mode == "down":
            await _drop_connection(scope, receive)
            return fault.mode
        key = budget_key(scope, body)
        self.state.budget.observe(key)
        if fault is not None and fault.mode == "timeout":
            if not await _hang(wire, lambda: self.state.faults.is_active(fault)):
                return fault.mode  # the client gave up while the server hung
        elif fault is not None:
            answer = await self._apply_fault(fault)
            if answer is not None:
                await answer(scope, receive, send)
                return fault.mode
        verdict = self.state.budget.check(key)
        if verdict is Verdict.BLOCKED:
            await nginx_page(403)(scope, receive, send)
        elif verdict is Verdict.LIMITED:
            await too_many_requests(self.state.budget.retry_after(key))(scope, receive, send)
        elif path.startswith("/api/v4/") and not self._authorized(scope):
            await unauthorized()(scope, receive, send)
        else:
            await self.app(scope, receive, send)
        return None if fault is None else fault.mode

    async def _apply_fault(self, fault: Fault) -> Response | None:
        """The canned answer of `fault`, or None to go on (after `slow`'s delay)."""
        if fault.mode == "500":
            return server_error()
        if fault.mode == "429":
            left = 1 if fault.until is None else max(1, int(fault.until - self.state.clock()))
            return too_many_requests(left)
        if fault.mode == "html429":
            return nginx_page(429)
        if fault.mode == "403":
            return nginx_page(403)
        if fault.mode == "400":
            # amoCRM refusing a request as a whole: problem JSON naming no item or field.
            return problem(400, "Request validation failed")
        if fault.mode == "slow":
            await asyncio.sleep(fault.delay_s)
            return None
        return None

    def _authorized(self, scope: Scope) -> bool:
        token = bearer_of(scope)
        return token is not None and self.state.tokens.authenticate(token)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _drop_connection(scope: Scope, receive: Receive) -> None:
    abort: Callable[[], None] | None = scope.get("extensions", {}).get(ABORT_EXTENSION)
    if abort is None:
        raise ConnectionDropped("sandbox is down")
    abort()
    # Wait for the server to notice the connection is gone, so it sends no 500 of its own.
    while (await receive())["type"] != "http.disconnect":
        pass


async def _hang(receive: Receive, lasts: Callable[[], bool]) -> bool:
    """Hold the request while `lasts()`; False if the client went away meanwhile."""
    disconnected = asyncio.ensure_future(_wait_disconnect(receive))
    try:
        waited = 0.0
        while lasts() and waited < MAX_HANG_S:
            if disconnected.done():
                return False
            await asyncio.sleep(0.02)
            waited += 0.02
        return not disconnected.done()
    finally:
        disconnected.cancel()


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
