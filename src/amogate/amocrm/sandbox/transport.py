"""`SandboxTransport`: the sandbox in-process, failing like a network would.

It wraps `httpx.ASGITransport` and turns the two faults an ASGI app cannot express into what a
client sees over a network: `down` → `httpx.ConnectError` (nothing reached the server) and
`timeout` → the request hangs until the fault ends or the request's read timeout passes, then
`httpx.ReadTimeout`. Both are recorded in the request log with status `None`.
"""

from __future__ import annotations

import asyncio
import time

import httpx
from starlette.types import ASGIApp

from amogate.amocrm.sandbox.faults import Fault
from amogate.amocrm.sandbox.middleware import budget_key, parse_body
from amogate.amocrm.sandbox.state import SandboxState

MAX_HANG_S = 60.0
POLL_S = 0.01


class SandboxTransport(httpx.AsyncBaseTransport):
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.inner = httpx.ASGITransport(app=app)

    @property
    def state(self) -> SandboxState:
        state: SandboxState = self.app.state.sandbox  # type: ignore[attr-defined]
        return state

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        fault = self.state.faults.peek(path)
        if fault is not None and fault.mode in ("down", "timeout"):
            self.state.faults.take(path)
            if fault.mode == "down":
                self._record(request, fault, 0.0)
                raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
            if await self._hang(request, fault):
                return await self.inner.handle_async_request(request)
            raise httpx.ReadTimeout("timed out", request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def _hang(self, request: httpx.Request, fault: Fault) -> bool:
        """Wait like a hung server; True if the fault ended before the client's read timeout."""
        timeouts = request.extensions.get("timeout", {})
        read = timeouts.get("read") if isinstance(timeouts, dict) else None
        limit = MAX_HANG_S if read is None else min(float(read), MAX_HANG_S)
        started = time.perf_counter()
        while time.perf_counter() - started < limit:
            if not self.state.faults.is_active(fault):
                return True
            await asyncio.sleep(POLL_S)
        self._record(request, fault, (time.perf_counter() - started) * 1000)
        return False

    def _record(self, request: httpx.Request, fault: Fault, duration_ms: float) -> None:
        body = parse_body(request.content, request.headers.get("content-type", ""))
        scope = {
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "client": ("127.0.0.1", 123),  # what ASGITransport reports
        }
        self.state.log.record(
            time=self.state.clock(),
            method=request.method,
            path=request.url.path,
            query=request.url.query.decode("latin-1"),
            body=body,
            status=None,
            fault=fault.mode,
            client=budget_key(scope, body),
            duration_ms=duration_ms,
        )
