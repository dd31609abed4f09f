"""Injected faults through `SandboxTransport`: each looks like the real failure to a client."""

from __future__ import annotations

import time

import httpx
import pytest

from amogate.amocrm.sandbox.clock import ManualClock
from amogate.amocrm.sandbox.config import SandboxConfig
from amogate.amocrm.sandbox.state import SandboxState
from tests.sandbox.helpers import JSON, refresh


async def fault(sandbox: httpx.AsyncClient, **spec: object) -> JSON:
    response = await sandbox.post("/_sandbox/faults", json=spec)
    assert response.status_code == 201, response.text
    body: JSON = response.json()
    return body


async def test_down_raises_connect_error_and_is_logged(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await fault(sandbox, mode="down", duration_s=30)

    with pytest.raises(httpx.ConnectError):
        await sandbox.get("/api/v4/account", headers=auth)

    entry = (await sandbox.get("/_sandbox/requests")).json()[-1]
    assert entry["status"] is None
    assert entry["fault"] == "down"


async def test_down_ends_with_its_duration(
    sandbox: httpx.AsyncClient, auth: dict[str, str], clock: ManualClock
) -> None:
    await fault(sandbox, mode="down", duration_s=30)
    clock.advance(30)

    assert (await sandbox.get("/api/v4/account", headers=auth)).status_code == 200


async def test_timeout_hangs_until_the_read_timeout_then_read_timeout(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await fault(sandbox, mode="timeout", duration_s=30)
    started = time.perf_counter()

    with pytest.raises(httpx.ReadTimeout):
        await sandbox.get("/api/v4/account", headers=auth, timeout=0.3)

    assert 0.25 <= time.perf_counter() - started < 2
    entry = (await sandbox.get("/_sandbox/requests")).json()[-1]
    assert (entry["status"], entry["fault"]) == (None, "timeout")


async def test_timeout_answers_late_when_the_fault_is_lifted(
    sandbox: httpx.AsyncClient, auth: dict[str, str], state: SandboxState
) -> None:
    import asyncio

    await fault(sandbox, mode="timeout", duration_s=30)
    pending = asyncio.ensure_future(sandbox.get("/api/v4/account", headers=auth, timeout=5))
    for _ in range(500):  # until the request has met the fault (and hangs there)
        if state.faults.injected:
            break
        await asyncio.sleep(0.01)
    assert state.faults.injected == 1
    await asyncio.sleep(0.05)  # room for a wrong early answer to arrive
    assert not pending.done()

    state.faults.clear()

    assert (await pending).status_code == 200


async def test_500_is_amocrm_internal_error(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await fault(sandbox, mode="500", count=1)

    failed = await sandbox.get("/api/v4/account", headers=auth)
    after = await sandbox.get("/api/v4/account", headers=auth)

    assert failed.status_code == 500
    assert failed.headers["content-type"] == "application/problem+json"
    body = failed.json()
    assert body["title"] == "ErrInternalServer"
    assert body["status"] == 500
    assert len(body["trace_id"]) == 32
    assert after.status_code == 200


async def test_429_fault_is_json_with_retry_after(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await fault(sandbox, mode="429", duration_s=10)

    response = await sandbox.get("/api/v4/account", headers=auth)

    assert response.status_code == 429
    assert response.json()["retry_after"] == 10
    assert response.json()["title"] == "Too Many Requests"


async def test_html429_fault_is_an_html_page(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await fault(sandbox, mode="html429", count=1)

    response = await sandbox.get("/api/v4/account", headers=auth)

    assert response.status_code == 429
    assert response.headers["content-type"].startswith("text/html")
    assert "<title>429 Too Many Requests</title>" in response.text
    assert "retry-after" not in response.headers


async def test_403_fault_is_the_nginx_block_page(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await fault(sandbox, mode="403", count=1)

    response = await sandbox.get("/api/v4/account", headers=auth)

    assert response.status_code == 403
    assert "<center>nginx</center>" in response.text


async def test_slow_answers_after_the_delay(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await fault(sandbox, mode="slow", count=1, delay_s=0.3)
    started = time.perf_counter()

    response = await sandbox.get("/api/v4/account", headers=auth)

    assert response.status_code == 200
    assert time.perf_counter() - started >= 0.3


async def test_count_limits_a_fault_to_the_next_requests(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await fault(sandbox, mode="500", count=2)

    statuses = [(await sandbox.get("/api/v4/account", headers=auth)).status_code for _ in range(3)]

    assert statuses == [500, 500, 200]


async def test_path_prefix_narrows_a_fault(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await fault(sandbox, mode="500", duration_s=60, path_prefix="/api/v4/leads/unsorted")

    other = await sandbox.get("/api/v4/account", headers=auth)
    hit = await sandbox.get("/api/v4/leads/unsorted", headers=auth)

    assert other.status_code == 200
    assert hit.status_code == 500


async def test_faults_hit_the_token_endpoint_too(
    sandbox: httpx.AsyncClient, tokens: JSON, config: SandboxConfig
) -> None:
    await fault(sandbox, mode="down", count=1, path_prefix="/oauth2/")

    with pytest.raises(httpx.ConnectError):
        await refresh(sandbox, config, tokens["refresh_token"])
    assert (await refresh(sandbox, config, tokens["refresh_token"])).status_code == 200


async def test_faults_spare_the_control_api(sandbox: httpx.AsyncClient) -> None:
    await fault(sandbox, mode="down", duration_s=60)
    await fault(sandbox, mode="500", duration_s=60)

    assert (await sandbox.get("/_sandbox/stats")).status_code == 200
    listed = (await sandbox.get("/_sandbox/faults")).json()
    assert [f["mode"] for f in listed] == ["down", "500"]


async def test_delete_ends_all_faults(sandbox: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await fault(sandbox, mode="down", duration_s=60)

    assert (await sandbox.delete("/_sandbox/faults")).status_code == 204
    assert (await sandbox.get("/api/v4/account", headers=auth)).status_code == 200


async def test_bad_fault_specs_are_refused(sandbox: httpx.AsyncClient) -> None:
    for spec in ({"mode": "explode", "count": 1}, {"mode": "500"}, {"mode": "500", "count": -1}):
        response = await sandbox.post("/_sandbox/faults", json=spec)
        assert response.status_code == 400
        assert "error" in response.json()


async def test_fault_stats(sandbox: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await fault(sandbox, mode="500", count=2)
    for _ in range(2):
        await sandbox.get("/api/v4/account", headers=auth)

    stats = (await sandbox.get("/_sandbox/stats")).json()

    assert stats["faults_injected"] == 2
    assert stats["by_fault"] == {"500": 2}
