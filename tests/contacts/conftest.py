"""The in-process sandbox and a client on it, for the contact tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from amogate.amocrm.client import AmoClient
from amogate.amocrm.sandbox.config import SandboxConfig
from amogate.amocrm.sandbox.runner import SandboxServer
from tests.amocrm.sandbox_support import (
    PUBLIC_URL,
    Calls,
    RefreshingProvider,
    Sandbox,
    make_client,
)


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    box = Sandbox(SandboxConfig(public_url=PUBLIC_URL, rate_limit=0))
    yield box
    await box.control.aclose()


@pytest.fixture
def calls() -> Calls:
    return []


@pytest.fixture
async def provider(sandbox: Sandbox) -> AsyncIterator[RefreshingProvider]:
    async with sandbox.oauth_http() as http:
        yield RefreshingProvider(sandbox, http, await sandbox.exchange(http))


@pytest.fixture
async def client(
    sandbox: Sandbox, provider: RefreshingProvider, calls: Calls
) -> AsyncIterator[AmoClient]:
    async with make_client(sandbox, provider, calls) as amo:
        yield amo


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(rate_limit=0) as running:
        yield running


@pytest.fixture
def fresh(server: SandboxServer) -> SandboxServer:
    httpx.post(f"{server.url}/_sandbox/reset", timeout=10).raise_for_status()
    return server
