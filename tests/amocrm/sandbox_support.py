"""The in-process amoCRM sandbox as the client tests reach it: OAuth, faults, a client."""

from __future__ import annotations

from typing import Any

import httpx

from amogate.amocrm.auth import BearerAuth
from amogate.amocrm.client import AmoClient
from amogate.amocrm.oauth import TokenPair, exchange_code, refresh_tokens, token_url
from amogate.amocrm.ratelimit import OutboundLimiter
from amogate.amocrm.sandbox.app import create_sandbox_app
from amogate.amocrm.sandbox.clock import ManualClock
from amogate.amocrm.sandbox.config import SandboxConfig
from amogate.amocrm.sandbox.state import SandboxState
from amogate.amocrm.sandbox.transport import SandboxTransport

PUBLIC_URL = "http://sandbox.test"
Calls = list[tuple[str, int | None, float]]


class Sandbox:
    """One sandbox account plus what a test needs to reach it like the gateway does."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.clock = ManualClock()
        self.state = SandboxState(config, clock=self.clock)
        self.app = create_sandbox_app(config, self.state)
        self.control = httpx.AsyncClient(transport=self.transport(), base_url=PUBLIC_URL)
        self.token_url = token_url(config.referer, base_url=config.public_url)

    def transport(self) -> SandboxTransport:
        return SandboxTransport(self.app)

    def oauth_http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.transport(), timeout=5.0)

    async def sleep(self, seconds: float) -> None:
        self.clock.advance(seconds + 1e-6)  # like asyncio.sleep, never wakes early

    async def code(self) -> str:
        response = await self.control.post(
            "/_sandbox/authorize", json={"client_id": self.config.client_id, "state": "st"}
        )
        response.raise_for_status()
        code: str = response.json()["code"]
        return code

    async def exchange(self, http: httpx.AsyncClient) -> TokenPair:
        return await exchange_code(http, code=await self.code(), **self.credentials())

    def credentials(self) -> dict[str, str]:
        return {
            "token_url": self.token_url,
            "client_id": self.config.client_id,
            "client_secret": self.config.client_secret,
            "redirect_uri": self.config.redirect_uri,
        }

    async def fault(self, mode: str, **spec: Any) -> None:
        response = await self.control.post("/_sandbox/faults", json={"mode": mode, **spec})
        assert response.status_code == 201, response.text


class RefreshingProvider:
    """Keeps one token pair in memory and refreshes it through the OAuth endpoint on a 401."""

    def __init__(self, sandbox: Sandbox, http: httpx.AsyncClient, pair: TokenPair) -> None:
        self.sandbox = sandbox
        self.http = http
        self.pair = pair
        self.refreshes = 0

    async def access_token(self) -> str:
        return self.pair.access_token

    async def refresh_after_401(self, rejected_token: str) -> str | None:
        if rejected_token != self.pair.access_token:
            return self.pair.access_token
        self.pair = await refresh_tokens(
            self.http, refresh_token=self.pair.refresh_token, **self.sandbox.credentials()
        )
        self.refreshes += 1
        return self.pair.access_token


def make_client(
    sandbox: Sandbox,
    provider: RefreshingProvider,
    calls: Calls,
    *,
    limiter: OutboundLimiter | None = None,
    timeout: httpx.Timeout | None = None,
) -> AmoClient:
    return AmoClient(
        PUBLIC_URL,
        auth=BearerAuth(provider),
        limiter=limiter,
        transport=sandbox.transport(),
        timeout=timeout or httpx.Timeout(5.0),
        on_call=lambda endpoint, status, seconds: calls.append((endpoint, status, seconds)),
        sleep=sandbox.sleep,
    )
