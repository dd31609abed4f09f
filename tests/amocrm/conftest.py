"""Fixtures for driving the real client against the in-process amoCRM sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from amogate.amocrm.client import AmoClient
from amogate.amocrm.sandbox.config import SandboxConfig
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
async def oauth_http(sandbox: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with sandbox.oauth_http() as http:
        yield http


@pytest.fixture
async def provider(sandbox: Sandbox, oauth_http: httpx.AsyncClient) -> RefreshingProvider:
    return RefreshingProvider(sandbox, oauth_http, await sandbox.exchange(oauth_http))


@pytest.fixture
def calls() -> Calls:
    return []


@pytest.fixture
async def client(
    sandbox: Sandbox, provider: RefreshingProvider, calls: Calls
) -> AsyncIterator[AmoClient]:
    async with make_client(sandbox, provider, calls) as amo:
        yield amo
