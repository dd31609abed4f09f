"""A small real HTTP server on 127.0.0.1 that receives the sandbox's webhooks.

It records every POST (path, headers, raw body) and answers as the test says: `status` (or
the next of `script`, statuses to answer in turn), `delay_s` before answering, or `hold` (an
Event) that keeps every answer back until set, a `redirect_to` Location, or an
`endless_body` (a huge promised body trickling out). In-process tests wait with `arrived` (async,
so the sandbox sharing the event loop keeps sending); tests against a sandbox process may
block in `wait_for`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from amogate.amocrm.webhook_format import WebhookPost, parse_webhook

HOLD_LIMIT_S = 30.0


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def parsed(self) -> WebhookPost:
        return parse_webhook(self.body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: Receiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (the sandbox's timeout) is expected here, not an error."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        owner.record(Received(self.path, dict(self.headers.items()), body, time.monotonic()))
        owner.hold.wait(HOLD_LIMIT_S)
        if owner.delay_s:
            time.sleep(owner.delay_s)
        self.send_response(owner.next_status())
        if owner.redirect_to:
            self.send_header("Location", owner.redirect_to)
        if owner.endless_body:
            # Promise a huge body and keep it coming slowly: only a reader of bodies waits.
            self.send_header("Content-Length", str(10**12))
            self.end_headers()
            for _ in range(int(HOLD_LIMIT_S * 10)):
                try:
                    self.wfile.write(b"x" * 1024)
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.1)
            return
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Receiver:
    def __init__(self, port: int = 0) -> None:
        self.status = 200
        self.script: deque[int] = deque()
        self.delay_s = 0.0
        self.redirect_to: str | None = None
        self.endless_body = False
        self.hold = threading.Event()
        self.hold.set()
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/amo/hook"

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def record(self, post: Received) -> None:
        with self._lock:
            self._received.append(post)

    def next_status(self) -> int:
        with self._lock:
            return self.script.popleft() if self.script else self.status

    async def arrived(self, count: int, timeout_s: float = 10.0) -> list[Received]:
        """Wait without blocking the event loop until `count` POSTs arrived."""
        deadline = time.monotonic() + timeout_s
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.received)} of {count} webhooks arrived")
            await asyncio.sleep(0.01)
        return self.received

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[Received]:
        """Block until `count` POSTs arrived (for tests that run the sandbox elsewhere)."""
        deadline = time.monotonic() + timeout_s
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.received)} of {count} webhooks arrived")
            time.sleep(0.01)
        return self.received

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.hold.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
