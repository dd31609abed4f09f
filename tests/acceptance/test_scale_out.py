"""Scale-out on PostgreSQL: two `amogate serve --no-worker` instances take the leads and two
standalone `amogate worker` processes deliver them, all sharing one database in front of one
amoCRM (the sandbox, at amoCRM's budget of 7 requests/s). Every lead is delivered by one of
the standalone workers, exactly once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from amogate.amocrm.sandbox.runner import SandboxServer
from amogate.storage import deliveries
from amogate.storage.db import Database
from tests.conftest import TEST_API_KEY
from tests.support.processes import (
    connect_through_browser_flow,
    gateway_env,
    log_events,
    run_amogate,
    running_gateway,
    running_worker,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

WAVES = 6
LEADS_PER_WAVE = 20  # per instance


async def _send_leads(url: str, prefix: str, start: int, count: int) -> list[int]:
    async with httpx.AsyncClient(timeout=30) as client:
        sem = asyncio.Semaphore(16)

        async def one(i: int) -> int:
            async with sem:
                response = await client.post(
                    f"{url}/api/v1/leads/unsorted",
                    headers={"X-API-KEY": TEST_API_KEY},
                    json={
                        "lead": {"name": f"{prefix} lead {i}", "price": i},
                        "contact": {"name": f"{prefix} client {i}", "phone": f"+99893{i:07d}"},
                        "comment": f"{prefix} {i}",
                    },
                )
                return response.status_code

        return await asyncio.gather(*(one(i) for i in range(start, start + count)))


def _unsorted_source_uids(sandbox_url: str, token: str) -> list[str]:
    uids: list[str] = []
    page = 1
    with httpx.Client(timeout=15) as client:
        while True:
            response = client.get(
                f"{sandbox_url}/api/v4/leads/unsorted",
                params={"page": page, "limit": 250},
                headers={"Authorization": f"Bearer {token}"},
            )
            if response.status_code == 204:
                return uids
            response.raise_for_status()
            items: list[dict[str, Any]] = response.json()["_embedded"]["unsorted"]
            uids += [str(item["source_uid"]) for item in items]
            if "next" not in response.json().get("_links", {}):
                return uids
            page += 1


async def _unsettled(database_url: str) -> int:
    """Deliveries still queued, being sent or waiting for a retry."""
    db = Database(database_url)
    try:
        async with db.read() as conn:
            counts = await deliveries.count_by_status(conn)
    finally:
        await db.dispose()
    return sum(n for status, n in counts.items() if status not in deliveries.TERMINAL)


def _delivered_by(log: Path) -> int:
    return sum(1 for e in log_events(log) if e.get("event") == "delivery.delivered")


def test_two_instances_and_two_workers_deliver_each_lead_once_within_the_budget(
    tmp_path: Path, postgres_url: str
) -> None:
    env = {
        "DATABASE_URL": postgres_url,
        "LEAD_SYNC_TIMEOUT": "0",
        "AMO_CLIENT_ID": "sandbox-client-id",
        "AMO_CLIENT_SECRET": "sandbox-client-secret",
        "AMO_REDIRECT_URI": "http://localhost:9095/oauth/callback",
        "DELIVERY_RETRY_BASE_SECONDS": "1",
    }
    upgrade = run_amogate(tmp_path, gateway_env(tmp_path, **env), "db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    viewer = "scale-out-viewer-token"
    # Access tokens live 4 s and leads arrive in waves over ~20 s, so the run crosses several
    # refreshes, made by whichever of the four processes needs the token first.
    with SandboxServer(rate_limit=7, access_token_ttl=4, long_lived_token=viewer) as sandbox:
        env["AMO_BASE_URL"] = sandbox.url
        with (
            running_gateway(tmp_path, "--no-worker", log_name="a.log", environment=env) as first,
            running_gateway(tmp_path, "--no-worker", log_name="b.log", environment=env) as second,
            running_worker(tmp_path, "worker1.log", **env) as worker1,
            running_worker(tmp_path, "worker2.log", **env) as worker2,
        ):
            connect_through_browser_flow(first, sandbox.url)

            async def waves() -> list[int]:
                statuses: list[int] = []
                for wave in range(WAVES):
                    start = wave * LEADS_PER_WAVE
                    for batch in await asyncio.gather(
                        _send_leads(first, "A", start, LEADS_PER_WAVE),
                        _send_leads(second, "B", start, LEADS_PER_WAVE),
                    ):
                        statuses += batch
                    await asyncio.sleep(3)  # spreads the load over several token lifetimes
                return statuses

            statuses = asyncio.run(waves())
            assert Counter(statuses).keys() <= {200, 202}, Counter(statuses)
            expected = 2 * WAVES * LEADS_PER_WAVE
            deadline = time.monotonic() + 120
            while asyncio.run(_unsettled(postgres_url)) and time.monotonic() < deadline:
                time.sleep(0.5)
            assert asyncio.run(_unsettled(postgres_url)) == 0, "the queue never emptied"
        # Counted once the queue is empty and every process has exited: no send is in flight.
        uids = _unsorted_source_uids(sandbox.url, viewer)
        stats = httpx.get(f"{sandbox.url}/_sandbox/stats").json()
        delivered = _delivered_by(worker1) + _delivered_by(worker2)
    assert len(uids) == expected
    # The standalone workers delivered every lead (the instances run no worker).
    assert delivered == expected
    assert len(set(uids)) == expected, "a lead was delivered twice"
    assert stats["unsorted_duplicate_source_uids"] == 0
    assert stats["rate_limited"] == 0, "amoCRM answered 429"
    assert stats["max_requests_per_second_any"] <= 7
    oauth = stats["oauth"]
    assert oauth["refreshes_ok"] >= 2, "the run should cross several token expiries"
    assert oauth["refreshes_rejected"] == 0
    assert oauth["revoked_refresh_presented"] == 0
    batched = stats["by_endpoint"].get("POST /api/v4/leads/unsorted/forms", 0)
    assert 0 < batched < expected / 3, f"{batched} form requests for {expected} leads"
