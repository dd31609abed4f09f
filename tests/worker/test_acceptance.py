"""Lead safety under load and failure: amoCRM outage, a burst of leads, kill -9 of the gateway.

Each test prints its measured numbers (run with -s to see them).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from amogate.amocrm.sandbox.config import SandboxConfig
from amogate.amocrm.sandbox.runner import SandboxServer
from amogate.amocrm.sandbox.tokens import make_long_lived_token
from amogate.settings import Settings
from tests.leads.helpers import URL, all_leads, simple_lead, unsorted_items, wait_until_settled
from tests.support.gateway import SANDBOX_URL, connected_gateway
from tests.support.processes import free_port, gateway_env, wait_for_http

pytestmark = pytest.mark.slow

FAST_RETRIES: dict[str, Any] = {
    "delivery_retry_base_seconds": 0.2,
    "delivery_retry_max_seconds": 1.0,
}


async def test_leads_arriving_during_an_amocrm_outage_are_all_delivered_once(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(
        settings, background=True, lead_sync_timeout=1.0, **FAST_RETRIES
    ) as h:
        await h.fault("down", 15)
        started = time.monotonic()
        responses = await asyncio.gather(
            *(h.gateway.post(URL, json=simple_lead(n), headers=api_headers) for n in range(60))
        )
        accepted_in = time.monotonic() - started
        assert {r.status_code for r in responses} <= {200, 202}
        ids = [r.json()["data"]["delivery_id"] for r in responses]
        statuses = await wait_until_settled(h.gateway, ids, api_headers, within=60)
        delivered_in = time.monotonic() - started
        assert Counter(statuses.values()) == {"delivered": 60}
        items = await unsorted_items(h)
        source_uids = Counter(item["source_uid"] for item in items)
        assert len(items) == 60
        assert set(source_uids) == set(ids)
        assert max(source_uids.values()) == 1
        assert len(await all_leads(h)) == 60
        stats = (await h.sandbox.get("/_sandbox/stats")).json()
        assert stats["unsorted_duplicate_source_uids"] == 0
        print(
            f"\noutage: 60 leads accepted in {accepted_in:.1f}s "
            f"({Counter(r.status_code for r in responses)}), all delivered "
            f"{delivered_in:.1f}s after the first; refused calls during the outage: "
            f"{stats['by_fault']}; forms requests: "
            f"{stats['by_endpoint'].get('POST /api/v4/leads/unsorted/forms')}"
        )


async def test_a_burst_of_leads_is_batched_within_amocrms_request_budget(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    config = SandboxConfig(public_url=SANDBOX_URL, rate_limit=7)
    async with connected_gateway(
        settings, sandbox_config=config, background=True, lead_sync_timeout=1.0, **FAST_RETRIES
    ) as h:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(300):
            queue.put_nowait(n)
        responses: list[httpx.Response] = []

        async def client() -> None:
            while not queue.empty():
                n = queue.get_nowait()
                responses.append(
                    await h.gateway.post(URL, json=simple_lead(n), headers=api_headers)
                )

        started = time.monotonic()
        await asyncio.gather(*(client() for _ in range(32)))
        accepted_in = time.monotonic() - started
        assert len(responses) == 300
        assert {r.status_code for r in responses} <= {200, 202}
        ids = [r.json()["data"]["delivery_id"] for r in responses]
        statuses = await wait_until_settled(h.gateway, ids, api_headers, within=120)
        delivered_in = time.monotonic() - started
        assert Counter(statuses.values()) == {"delivered": 300}
        stats = (await h.sandbox.get("/_sandbox/stats")).json()
        forms = stats["by_endpoint"]["POST /api/v4/leads/unsorted/forms"]
        notes = stats["by_endpoint"]["POST /api/v4/leads/notes"]
        assert stats["rate_limited"] == 0
        assert stats["by_status"].get("429", 0) == 0
        assert forms <= 300 / 4
        assert len({i["source_uid"] for i in await unsorted_items(h)}) == 300
        print(
            f"\nburst: 300 leads from 32 clients accepted in {accepted_in:.1f}s "
            f"({Counter(r.status_code for r in responses)}), delivered in {delivered_in:.1f}s; "
            f"amoCRM saw {stats['requests_total']} requests ({forms} unsorted/forms, "
            f"{notes} notes), 429s: {stats['rate_limited']}, "
            f"max {stats['max_requests_per_second_any']} req/s"
        )


def _start_gateway(
    tmp_path: Path, port: int, env: dict[str, str], log_name: str
) -> subprocess.Popen[bytes]:
    log = (tmp_path / log_name).open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "amogate", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    wait_for_http(f"http://127.0.0.1:{port}/health", process=process)
    return process


def test_every_lead_is_delivered_exactly_once_after_kill_9_mid_delivery(
    tmp_path: Path, api_headers: dict[str, str]
) -> None:
    sandbox_port = free_port()
    public_url = f"http://127.0.0.1:{sandbox_port}"
    token = make_long_lived_token(SandboxConfig(public_url=public_url), time.time())
    leads = 150
    with SandboxServer(port=sandbox_port, public_url=public_url, long_lived_token=token) as sb:
        env = gateway_env(
            tmp_path,
            AMO_BASE_URL=sb.url,
            AMO_LONG_LIVED_TOKEN=token,
            LEAD_SYNC_TIMEOUT="0",
            DELIVERY_RETRY_BASE_SECONDS="0.2",
            DELIVERY_RETRY_MAX_SECONDS="1",
            DELIVERY_LEASE_SECONDS="5",
        )
        port = free_port()
        gateway = f"http://127.0.0.1:{port}"
        process = _start_gateway(tmp_path, port, env, "first.log")
        try:
            # amoCRM answers forms slowly: the gateway is killed while a batch is in flight.
            httpx.post(
                f"{sb.url}/_sandbox/faults",
                json={
                    "mode": "slow",
                    "duration_s": 30,
                    "delay_s": 1.5,
                    "path_prefix": "/api/v4/leads/unsorted/forms",
                },
            ).raise_for_status()
            with httpx.Client(base_url=gateway, headers=api_headers, timeout=10) as client:
                ids = []
                for n in range(leads):
                    response = client.post(URL, json=simple_lead(n))
                    assert response.status_code == 202, response.text
                    ids.append(response.json()["data"]["delivery_id"])
            deadline = time.monotonic() + 20
            while not _forms_requests(sb.url) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _forms_requests(sb.url), "the gateway never started delivering"
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
            killed_after = _forms_requests(sb.url)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        httpx.delete(f"{sb.url}/_sandbox/faults").raise_for_status()

        restarted = _start_gateway(tmp_path, port, env, "second.log")
        try:
            started = time.monotonic()
            statuses = asyncio.run(_settle(gateway, ids, api_headers))
            recovered_in = time.monotonic() - started
        finally:
            restarted.terminate()
            restarted.wait(timeout=15)
        assert Counter(statuses.values()) == {"delivered": leads}
        auth = {"Authorization": f"Bearer {token}"}
        items = _all_unsorted(sb.url, auth)
        source_uids = Counter(item["source_uid"] for item in items)
        assert max(source_uids.values()) == 1
        assert set(source_uids) == set(ids)
        stats = httpx.get(f"{sb.url}/_sandbox/stats").json()
        assert stats["entities"]["leads"] == leads
        assert stats["unsorted_duplicate_source_uids"] == 0
        print(
            f"\ncrash: {leads} leads, killed with {killed_after} forms request(s) sent; "
            f"after restart all delivered in {recovered_in:.1f}s; unsorted items {len(items)}, "
            f"leads {stats['entities']['leads']}, duplicate source_uids 0; amoCRM requests: "
            f"{stats['by_endpoint']}"
        )


async def _settle(gateway: str, ids: list[str], headers: dict[str, str]) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=gateway, timeout=10) as client:
        return await wait_until_settled(client, ids, headers, within=60)


def _forms_requests(sandbox: str) -> int:
    stats = httpx.get(f"{sandbox}/_sandbox/stats").json()
    return int(stats["by_endpoint"].get("POST /api/v4/leads/unsorted/forms", 0))


def _all_unsorted(sandbox: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        response = httpx.get(
            f"{sandbox}/api/v4/leads/unsorted",
            params={"page": page, "limit": 250, "filter[category][]": "forms"},
            headers=headers,
        )
        if response.status_code == 204:
            return items
        batch = response.json()["_embedded"]["unsorted"]
        items += batch
        if len(batch) < 250:
            return items
        page += 1
