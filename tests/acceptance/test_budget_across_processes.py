"""Three gateway processes sharing one database stay inside amoCRM's 7 requests per second
together: the sandbox, which answers 429 past 7 in any rolling second, never has to.

Run with -s to see the measured numbers. How much of the budget they use is a benchmark
(`make bench`, scenario `shared_budget`), not a test: it depends on how loaded the machine is.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from amogate.amocrm.sandbox.config import SandboxConfig
from amogate.amocrm.sandbox.runner import SandboxServer
from amogate.amocrm.sandbox.tokens import make_long_lived_token
from tests.conftest import TEST_API_KEY
from tests.support.processes import free_port, gateway_env, run_amogate, running_gateway

pytestmark = pytest.mark.slow

API_KEY = {"X-API-KEY": TEST_API_KEY}
RATE_LIMIT = 7
GATEWAYS = 3
LOAD_S = 12.0


async def hammer(gateways: list[str], seconds: float) -> Counter[str]:
    """Several clients per gateway asking for data that is fetched from amoCRM every time."""
    outcomes: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    paths = ["/api/v1/info/account", "/api/v1/info/pipelines", "/api/v1/info/lead-fields"]

    async def client(base: str, path: str) -> None:
        async with httpx.AsyncClient(base_url=base, headers=API_KEY, timeout=30) as http:
            while time.monotonic() < deadline:
                response = await http.get(path, params={"refresh": "true"})
                fresh = response.status_code == 200 and response.headers.get("X-Cache") == "MISS"
                outcomes["ok" if fresh else f"failed {response.status_code}"] += 1

    await asyncio.gather(*(client(g, p) for g in gateways for p in paths for _ in range(2)))
    return outcomes


def test_gateway_processes_share_one_request_budget(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    token = make_long_lived_token(SandboxConfig(public_url=public_url), time.time())
    with SandboxServer(
        port=port, public_url=public_url, long_lived_token=token, rate_limit=RATE_LIMIT
    ) as sandbox:
        settings = {
            "DATABASE_URL": database_url,
            "AMO_BASE_URL": sandbox.url,
            "AMO_LONG_LIVED_TOKEN": token,
            # ?refresh=true is the load here: let every one of them reach amoCRM.
            "INFO_REFRESH_MIN_INTERVAL": "0",
        }
        if not database_url.startswith("sqlite"):
            upgraded = run_amogate(tmp_path, gateway_env(tmp_path, **settings), "db", "upgrade")
            assert upgraded.returncode == 0, upgraded.stderr
        with ExitStack() as stack:
            gateways = [
                stack.enter_context(
                    running_gateway(
                        tmp_path,
                        "--no-worker",
                        port=free_port(),
                        log_name=f"gw{n}.log",
                        environment=settings,
                    )
                )
                for n in range(GATEWAYS)
            ]
            started = time.monotonic()
            outcomes = asyncio.run(hammer(gateways, LOAD_S))
            elapsed = time.monotonic() - started
        stats: dict[str, Any] = httpx.get(f"{sandbox.url}/_sandbox/stats").json()

    api_calls = sum(n for e, n in stats["by_endpoint"].items() if "/api/v4/" in e)
    print(
        f"\nbudget ({database_url.split(':')[0]}, {GATEWAYS} processes): "
        f"{sum(outcomes.values())} gateway requests {dict(outcomes)}, {api_calls} amoCRM calls "
        f"in {elapsed:.1f}s ({api_calls / elapsed:.2f}/s); max per second "
        f"{stats['max_requests_per_second_any']}, 429s {stats['rate_limited']}, "
        f"statuses {stats['by_status']}"
    )
    assert set(outcomes) == {"ok"}, outcomes
    assert stats["rate_limited"] == 0
    assert stats["max_requests_per_second_any"] <= RATE_LIMIT
