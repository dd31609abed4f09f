"""`amogate deliveries list|show|retry` and `amogate worker`, run as real processes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from amogate.amocrm.sandbox.config import SandboxConfig
from amogate.amocrm.sandbox.runner import SandboxServer
from amogate.amocrm.sandbox.tokens import make_long_lived_token
from amogate.storage import deliveries as store
from amogate.storage import migrate
from amogate.storage.db import Database
from tests.leads.helpers import simple_lead
from tests.support.processes import free_port, gateway_env

NOW = datetime.now(UTC)


def amogate(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "amogate", *args],
        env=gateway_env(tmp_path, **env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def seed(url: str, *, failed: bool) -> str:
    db = Database(url)
    try:
        await migrate.upgrade(db)
        async with db.transaction() as conn:
            await store.insert_delivery(
                conn,
                delivery_id="d" * 32,
                payload=_payload(),
                lead_name="Lead 1",
                contact_name="Client 1",
                api_key_id="admin",
                request_id=None,
                now=NOW,
                give_up_at=NOW + timedelta(hours=72),
            )
            if failed:
                await store.claim_due(
                    conn, owner="w", now=NOW, lease_until=NOW + timedelta(seconds=9), limit=1
                )
                await store.mark_failed(
                    conn, "d" * 32, owner="w", now=NOW, error="gave up", details=None
                )
    finally:
        await db.dispose()
    return "d" * 32


def _payload() -> dict[str, object]:
    from amogate.leads.mapping import stored_payload
    from amogate.leads.reading import parse_lead_request

    return stored_payload(parse_lead_request(simple_lead(1)), "UZ")


def test_operators_list_show_and_retry_a_failed_delivery(tmp_path: Path) -> None:
    delivery_id = asyncio.run(seed(f"sqlite:///{tmp_path / 'gateway.db'}", failed=True))
    listed = amogate(tmp_path, "deliveries", "list", "--status", "failed")
    assert listed.returncode == 0, listed.stderr
    assert delivery_id in listed.stdout
    assert "failed" in listed.stdout
    shown = amogate(tmp_path, "deliveries", "show", delivery_id)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["status"] == "failed"
    retried = amogate(tmp_path, "deliveries", "retry", "--failed")
    assert retried.returncode == 0, retried.stderr
    assert "1 delivery queued again" in retried.stdout
    again = amogate(tmp_path, "deliveries", "list", "--status", "retrying")
    assert delivery_id in again.stdout
    missing = amogate(tmp_path, "deliveries", "show", "nope")
    assert missing.returncode == 1
    assert "no delivery nope" in missing.stderr


@pytest.mark.slow
def test_the_standalone_worker_delivers_queued_leads(tmp_path: Path) -> None:
    delivery_id = asyncio.run(seed(f"sqlite:///{tmp_path / 'gateway.db'}", failed=False))
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    token = make_long_lived_token(SandboxConfig(public_url=public_url), time.time())
    with SandboxServer(port=port, public_url=public_url, long_lived_token=token) as sandbox:
        env = gateway_env(tmp_path, AMO_BASE_URL=sandbox.url, AMO_LONG_LIVED_TOKEN=token)
        worker = subprocess.Popen(
            [sys.executable, "-m", "amogate", "worker"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            status = ""
            while time.monotonic() < deadline and status != "delivered":
                time.sleep(0.3)
                shown = amogate(tmp_path, "deliveries", "show", delivery_id)
                status = json.loads(shown.stdout)["status"] if shown.returncode == 0 else ""
            assert status == "delivered"
            stats = httpx.get(f"{sandbox.url}/_sandbox/stats").json()
            assert stats["entities"]["unsorted"] == 1
        finally:
            worker.terminate()
            assert worker.wait(timeout=15) == 0
