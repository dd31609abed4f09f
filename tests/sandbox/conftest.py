"""Fixtures for the sandbox tests: an in-process sandbox with a hand-moved clock, reached
through `SandboxTransport` (so faults look like network failures), a connected token, and a
local HTTP receiver for the webhooks the sandbox sends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.applications import Starlette

from amogate.amocrm.sandbox.app import create_sandbox_app
from amogate.amocrm.sandbox.clock import ManualClock
from amogate.amocrm.sandbox.config import SandboxConfig
from amogate.amocrm.sandbox.state import SandboxState
from amogate.amocrm.sandbox.transport import SandboxTransport
from tests.sandbox.helpers import JSON, PUBLIC_URL, bearer, exchange
from tests.sandbox.receiver import Receiver


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def config() -> SandboxConfig:
    """No budget by default, so only the budget tests meet 429s."""
    return SandboxConfig(public_url=PUBLIC_URL, rate_limit=0)


@pytest.fixture
def state(config: SandboxConfig, clock: ManualClock) -> SandboxState:
    return SandboxState(config, clock=clock)


@pytest.fixture
def app(config: SandboxConfig, state: SandboxState) -> Starlette:
    return create_sandbox_app(config, state)


@pytest.fixture
async def sandbox(
    app: Starlette, config: SandboxConfig, state: SandboxState
) -> AsyncIterator[httpx.AsyncClient]:
    transport = SandboxTransport(app)
    async with httpx.AsyncClient(transport=transport, base_url=config.public_url) as client:
        yield client
    await state.sender.aclose()  # webhooks still in flight belong to this test's event loop


@pytest.fixture
async def tokens(sandbox: httpx.AsyncClient, config: SandboxConfig) -> JSON:
    return await exchange(sandbox, config)


@pytest.fixture
def auth(tokens: JSON) -> dict[str, str]:
    return bearer(tokens["access_token"])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running
