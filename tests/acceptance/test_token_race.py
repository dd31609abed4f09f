"""Two gateway processes sharing one database keep one amoCRM connection alive under load
while its access token expires every few seconds: no failed request, and amoCRM never sees a
refresh token twice (the "Token has been revoked" race of the original gateway).

Run with -s to see the measured numbers.
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

from amogate.amocrm.sandbox.runner import SandboxServer
from tests.conftest import TEST_API_KEY
from tests.support.processes import free_port, gateway_env, run_amogate, running_gateway

pytestmark = pytest.mark.slow

API_KEY = {"X-API-KEY": TEST_API_KEY}
ACCESS_TOKEN_TTL_S = 3
LOAD_S = 24.0
CLIENTS_PER_GATEWAY = 4


def connect_account(tmp_path: Path, env: dict[str, str], sandbox: SandboxServer) -> None:
    """What an operator does on a server without a browser."""
    if not env["DATABASE_URL"].startswith("sqlite"):
        upgraded = run_amogate(tmp_path, env, "db", "upgrade")
        assert upgraded.returncode == 0, upgraded.stderr
    code = httpx.post(f"{sandbox.url}/_sandbox/authorize", json={}).json()["code"]
    exchanged = run_amogate(tmp_path, env, "auth", "exchange", code)
    assert exchanged.returncode == 0, exchanged.stderr
    assert exchanged.stdout.startswith("connected to ")


async def hammer(gateways: list[str], seconds: float) -> Counter[str]:
    """Clients calling an endpoint that reaches amoCRM every time, on both gateways."""
    outcomes: Counter[str] = Counter()
    deadline = time.monotonic() + seconds

    async def client(base: str) -> None:
        async with httpx.AsyncClient(base_url=base, headers=API_KEY, timeout=30) as http:
            while time.monotonic() < deadline:
                response = await http.get("/api/v1/info/account", params={"refresh": "true"})
                fresh = response.status_code == 200 and response.headers.get("X-Cache") == "MISS"
                outcomes["ok" if fresh else f"failed {response.status_code}"] += 1

    await asyncio.gather(*(client(g) for g in gateways for _ in range(CLIENTS_PER_GATEWAY)))
    return outcomes


def test_two_gateways_refresh_one_at_a_time_under_load(tmp_path: Path, database_url: str) -> None:
    with SandboxServer(access_token_ttl=ACCESS_TOKEN_TTL_S, rate_limit=0) as sandbox:
        settings: dict[str, str] = {
            "DATABASE_URL": database_url,
            "AMO_BASE_URL": sandbox.url,
            "AMO_CLIENT_ID": sandbox.config.client_id,
            "AMO_CLIENT_SECRET": sandbox.config.client_secret,
            "AMO_REDIRECT_URI": sandbox.config.redirect_uri,
            # ?refresh=true is the load here: let every one of them reach amoCRM.
            "INFO_REFRESH_MIN_INTERVAL": "0",
        }
        connect_account(tmp_path, gateway_env(tmp_path, **settings), sandbox)
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
                for n in (1, 2)
            ]
            outcomes = asyncio.run(hammer(gateways, LOAD_S))
        stats: dict[str, Any] = httpx.get(f"{sandbox.url}/_sandbox/stats").json()
        log: list[dict[str, Any]] = httpx.get(
            f"{sandbox.url}/_sandbox/requests", params={"path_prefix": "/oauth2/"}
        ).json()

    oauth = stats["oauth"]
    presented = [
        e["body"]["refresh_token"]
        for e in log
        if isinstance(e.get("body"), dict) and e["body"].get("grant_type") == "refresh_token"
    ]
    expiries = LOAD_S / ACCESS_TOKEN_TTL_S
    print(
        f"\ntoken race ({database_url.split(':')[0]}): {sum(outcomes.values())} requests, "
        f"{dict(outcomes)}; refreshes ok {oauth['refreshes_ok']}, rejected "
        f"{oauth['refreshes_rejected']}, revoked presented {oauth['revoked_refresh_presented']}, "
        f"reused in grace {oauth['refresh_reused_in_grace']}; amoCRM statuses "
        f"{stats['by_status']}"
    )
    assert set(outcomes) == {"ok"}, outcomes
    assert outcomes["ok"] >= 50
    assert oauth["refreshes_ok"] >= expiries - 2  # the token really expired again and again
    assert oauth["refreshes_rejected"] == 0
    assert oauth["revoked_refresh_presented"] == 0
    assert oauth["refresh_reused_in_grace"] == 0
    assert len(presented) == len(set(presented)) == oauth["refreshes_ok"]
