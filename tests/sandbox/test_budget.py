"""The request budget against amocrm-api.md §2.1: 7 requests per second per token."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from amogate.amocrm.sandbox.app import create_sandbox_app
from amogate.amocrm.sandbox.clock import ManualClock
from amogate.amocrm.sandbox.config import SandboxConfig
from amogate.amocrm.sandbox.state import SandboxState
from amogate.amocrm.sandbox.transport import SandboxTransport
from tests.sandbox.helpers import PUBLIC_URL, bearer, exchange


@pytest.fixture
def config() -> SandboxConfig:
    return SandboxConfig(public_url=PUBLIC_URL, rate_limit=7)


async def burst(sandbox: httpx.AsyncClient, auth: dict[str, str], n: int) -> list[int]:
    return [(await sandbox.get("/api/v4/account", headers=auth)).status_code for _ in range(n)]


async def test_eighth_request_in_one_second_is_429_json(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    statuses = await burst(sandbox, auth, 7)
    response = await sandbox.get("/api/v4/account", headers=auth)

    assert statuses == [200] * 7
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert "retry-after" not in response.headers
    assert response.json() == {
        "title": "Too Many Requests",
        "type": "https://httpstatus.es/429",
        "status": 429,
        "detail": (
            "You have sent too many requests in a given amount of time. Please try again later."
        ),
        "retry_after": 1,
    }


async def test_budget_frees_up_after_a_second(
    sandbox: httpx.AsyncClient, auth: dict[str, str], clock: ManualClock
) -> None:
    await burst(sandbox, auth, 8)
    clock.advance(0.5)
    assert (await sandbox.get("/api/v4/account", headers=auth)).status_code == 429
    clock.advance(0.5)

    assert await burst(sandbox, auth, 7) == [200] * 7


async def test_rolling_window_counts_the_last_second_not_the_calendar_second(
    sandbox: httpx.AsyncClient, auth: dict[str, str], clock: ManualClock
) -> None:
    clock.advance(0.9)
    await burst(sandbox, auth, 7)
    clock.advance(0.2)  # a new calendar second, but the 7 are within the last 0.2 s

    assert (await sandbox.get("/api/v4/account", headers=auth)).status_code == 429


async def test_budget_is_per_token(
    sandbox: httpx.AsyncClient, auth: dict[str, str], config: SandboxConfig
) -> None:
    await burst(sandbox, auth, 8)
    other = bearer((await exchange(sandbox, config))["access_token"])

    assert (await sandbox.get("/api/v4/account", headers=other)).status_code == 200


async def test_control_api_is_never_limited_nor_counted(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    for _ in range(30):
        assert (await sandbox.get("/_sandbox/stats")).status_code == 200
    assert await burst(sandbox, auth, 7) == [200] * 7

    stats = (await sandbox.get("/_sandbox/stats")).json()
    assert all(not key.startswith("GET /_sandbox") for key in stats["by_endpoint"])


async def test_stats_report_429s_and_the_busiest_second(
    sandbox: httpx.AsyncClient, auth: dict[str, str], clock: ManualClock
) -> None:
    await burst(sandbox, auth, 10)
    clock.advance(5)
    await burst(sandbox, auth, 3)

    stats = (await sandbox.get("/_sandbox/stats")).json()

    assert stats["rate_limited"] == 3
    assert stats["by_status"]["429"] == 3
    assert stats["max_requests_per_second_any"] == 10
    token_keys = [k for k in stats["max_requests_per_second"] if k.startswith("token:")]
    assert [stats["max_requests_per_second"][k] for k in token_keys] == [10]


@pytest.fixture
async def blocking(clock: ManualClock) -> AsyncIterator[httpx.AsyncClient]:
    config = SandboxConfig(
        public_url=PUBLIC_URL, rate_limit=2, block_after_s=3, block_duration_s=60
    )
    app = create_sandbox_app(config, SandboxState(config, clock=clock))
    async with httpx.AsyncClient(transport=SandboxTransport(app), base_url=PUBLIC_URL) as client:
        yield client


async def test_repeated_violations_switch_to_a_403_html_block(
    blocking: httpx.AsyncClient, clock: ManualClock
) -> None:
    config = SandboxConfig(public_url=PUBLIC_URL, rate_limit=2)
    auth = bearer((await exchange(blocking, config))["access_token"])
    for _ in range(3):
        await burst(blocking, auth, 3)
        clock.advance(1)

    blocked = await blocking.get("/api/v4/account", headers=auth)
    token_call = await blocking.post("/oauth2/access_token", json={})

    assert blocked.status_code == 403
    assert blocked.headers["content-type"].startswith("text/html")
    assert "403 Forbidden" in blocked.text
    assert token_call.status_code == 403
    assert (await blocking.get("/_sandbox/stats")).json()["blocked"] is True
    clock.advance(60)
    assert (await blocking.get("/api/v4/account", headers=auth)).status_code == 200


async def test_block_mode_is_off_by_default(
    sandbox: httpx.AsyncClient, auth: dict[str, str], clock: ManualClock
) -> None:
    for _ in range(10):
        await burst(sandbox, auth, 9)
        clock.advance(1)

    assert (await sandbox.get("/api/v4/account", headers=auth)).status_code == 200
