"""Fakes shared by the amoCRM tests: a manual clock and a client over a handler function."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx

from amogate.amocrm.auth import BearerAuth, StaticTokenProvider, TokenProvider
from amogate.amocrm.client import AmoClient
from amogate.amocrm.ratelimit import OutboundLimiter

BASE_URL = "https://mycompany.amocrm.ru"
Handler = Callable[[httpx.Request], httpx.Response]


class FakeTime:
    """A clock that only moves when someone sleeps on it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Recorder:
    """A MockTransport handler answering from a list and remembering each request."""

    def __init__(self, *responses: httpx.Response | Exception) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def make_client(
    handler: Handler,
    *,
    provider: TokenProvider | None = None,
    limiter: OutboundLimiter | None = None,
    sleeps: list[float] | None = None,
    calls: list[tuple[str, int | None, float]] | None = None,
) -> AmoClient:
    async def sleep(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)

    def on_call(endpoint: str, status: int | None, seconds: float) -> None:
        if calls is not None:
            calls.append((endpoint, status, seconds))

    return AmoClient(
        BASE_URL,
        auth=BearerAuth(provider or StaticTokenProvider("token-1")),
        limiter=limiter,
        transport=httpx.MockTransport(handler),
        on_call=on_call,
        sleep=sleep,
    )


def problem(status: int, detail: str, **extra: Any) -> httpx.Response:
    body = {"title": "Problem", "type": f"https://httpstatus.es/{status}", "status": status}
    body.update(detail=detail, **extra)
    return httpx.Response(status, json=body, headers={"Content-Type": "application/problem+json"})


def html(status: int, title: str, headers: dict[str, str] | None = None) -> httpx.Response:
    page = f"<html><head><title>{title}</title></head><body><h1>{title}</h1>nginx</body></html>"
    return httpx.Response(
        status, text=page, headers={"Content-Type": "text/html", **(headers or {})}
    )


def fake_jwt(claims: dict[str, Any], *, pad: bool = False) -> str:
    def part(data: dict[str, Any]) -> str:
        raw = base64.urlsafe_b64encode(json.dumps(data).encode()).decode()
        return raw if pad else raw.rstrip("=")

    return f"{part({'typ': 'JWT', 'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"
