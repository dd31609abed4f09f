"""A gateway connected to the in-process amoCRM sandbox, for tests that cross both.

The sandbox is reached through `SandboxTransport`, so the gateway's real HTTP client code runs
(transport errors included); the connection is made by the real OAuth code exchange.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from amogate.amocrm.sandbox.app import create_sandbox_app
from amogate.amocrm.sandbox.config import SandboxConfig
from amogate.amocrm.sandbox.runner import SandboxServer
from amogate.amocrm.sandbox.transport import SandboxTransport
from amogate.app import create_app
from amogate.app_state import state_of
from amogate.connection import connect
from amogate.connection.service import AmoConnection
from amogate.info.cache import InfoCache
from amogate.settings import Settings

SANDBOX_URL = "http://sandbox.test"


@dataclass
class Harness:
    """The two sides: `gateway` (client of the gateway app), `sandbox` (client of the
    sandbox's own API and control endpoints), and the gateway's `amo` connection."""

    app: FastAPI
    gateway: httpx.AsyncClient
    sandbox_app: Any
    sandbox: httpx.AsyncClient
    amo: AmoConnection

    @property
    def info(self) -> InfoCache:
        """The `default` account's info cache."""
        return running_info(self.app)

    async def fault(self, mode: str, duration_s: float = 60, **extra: Any) -> None:
        response = await self.sandbox.post(
            "/_sandbox/faults", json={"mode": mode, "duration_s": duration_s, **extra}
        )
        response.raise_for_status()

    async def clear_faults(self) -> None:
        (await self.sandbox.delete("/_sandbox/faults")).raise_for_status()

    async def requests(self, path_prefix: str = "") -> list[dict[str, Any]]:
        response = await self.sandbox.get("/_sandbox/requests")
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()
        if isinstance(items, dict):
            items = items.get("requests", [])
        return [r for r in items if str(r.get("path", "")).startswith(path_prefix)]

    async def sandbox_api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Call the sandbox's amoCRM API with the gateway's current token."""
        token = await self.amo.tokens.access_token()
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        return await self.sandbox.request(method, path, headers=headers, **kwargs)


def running_amo(app: FastAPI) -> AmoConnection:
    """The `default` account's connection of a running app."""
    account = state_of(app).running().default
    assert account is not None
    return account.amo


def running_info(app: FastAPI) -> InfoCache:
    """The `default` account's info cache of a running app."""
    account = state_of(app).running().default
    assert account is not None
    return account.info


def sandbox_settings(settings: Settings, **overrides: Any) -> Settings:
    values = settings.model_dump()
    values.update(
        amo_base_url=SANDBOX_URL,
        amo_domain="",
        amo_client_id="sandbox-client-id",
        amo_client_secret="sandbox-client-secret",
        amo_redirect_uri="http://localhost:9095/oauth/callback",
    )
    values.update(overrides)
    for key in ("api_key", "amo_client_secret", "amo_long_lived_token", "admin_password"):
        value = values.get(key)
        if value is not None and hasattr(value, "get_secret_value"):
            values[key] = value.get_secret_value()
    return Settings(_env_file=None, **values)


@asynccontextmanager
async def connected_gateway(
    settings: Settings,
    *,
    sandbox_config: SandboxConfig | None = None,
    server: SandboxServer | None = None,
    connect_account: bool = True,
    background: bool = False,
    **setting_overrides: Any,
) -> AsyncIterator[Harness]:
    """Start the sandbox and the gateway; connect them through the OAuth code exchange.

    With ``server`` (a running `SandboxServer`), the gateway reaches amoCRM over real HTTP
    on its port instead of through the in-process transport."""
    config = sandbox_config or SandboxConfig(public_url=SANDBOX_URL, rate_limit=0)
    sandbox_app: Any = None
    transport: httpx.AsyncBaseTransport | None = None
    if server is None:
        sandbox_app = create_sandbox_app(config)
        transport = SandboxTransport(sandbox_app)
        sandbox_client = httpx.AsyncClient(transport=transport, base_url=SANDBOX_URL)
    else:
        config = server.config
        setting_overrides = {"amo_base_url": server.url, **setting_overrides}
        sandbox_client = httpx.AsyncClient(base_url=server.url, timeout=10)
    gw_settings = sandbox_settings(settings, **setting_overrides)
    app = create_app(gw_settings, amo_transport=transport, background=background)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway.test"
        ) as gateway,
        sandbox_client as sb,
    ):
        amo = running_amo(app)
        assert isinstance(amo, AmoConnection)
        if connect_account:
            code = (
                await sb.post(
                    "/_sandbox/authorize", json={"client_id": config.client_id, "state": "t"}
                )
            ).json()["code"]
            await connect.exchange(amo, code, config.referer)
        yield Harness(app, gateway, sandbox_app, sb, amo)
