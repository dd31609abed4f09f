"""Forms against real processes: a sandbox and a gateway (tests.security.support), forms made
with the real `amogate forms create`, leads read back through the sandbox's amoCRM API."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import TEST_API_KEY
from tests.security.support import Deployment, wait_until
from tests.support.processes import free_port, gateway_env, run_amogate, wait_for_http

GOOD_TOKEN = "good-captcha-token"
CAPTCHA_SECRET = "captcha-secret-0123456789"


def create_form(d: Deployment, name: str, *options: str) -> str:
    """`amogate forms create NAME OPTIONS...` on the deployment's database; the endpoint URL."""
    done = run_amogate(d.folder, gateway_env(d.folder), "forms", "create", name, *options)
    assert done.returncode == 0, done.stdout + done.stderr
    endpoint = next(line for line in done.stdout.splitlines() if line.startswith("/api/v1/forms/"))
    return d.url + endpoint


def delivery(d: Deployment, delivery_id: str) -> dict[str, Any]:
    answer = httpx.get(
        f"{d.url}/api/v1/leads/deliveries/{delivery_id}",
        headers={"X-API-KEY": TEST_API_KEY},
        timeout=10,
    )
    answer.raise_for_status()
    data: dict[str, Any] = answer.json()["data"]
    return data


def wait_delivered(d: Deployment, delivery_id: str) -> dict[str, Any]:
    wait_until(
        lambda: delivery(d, delivery_id)["status"] == "delivered", what=f"{delivery_id} delivered"
    )
    return delivery(d, delivery_id)


def amo_get(d: Deployment, path: str, **params: Any) -> Any:
    """GET from the sandbox's amoCRM API with the gateway's stored token (204 → None)."""
    token = d.tokens()[0]
    answer = httpx.get(
        f"{d.sandbox.url}{path}",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    if answer.status_code == 204:
        return None
    answer.raise_for_status()
    return answer.json()


def sandbox_leads(d: Deployment) -> list[dict[str, Any]]:
    found = amo_get(d, "/api/v4/leads", limit=250)
    return [] if found is None else list(found["_embedded"]["leads"])


def unsorted_forms_posted(d: Deployment) -> int:
    """How many POSTs the sandbox received at /api/v4/leads/unsorted/forms."""
    entries = httpx.get(
        f"{d.sandbox.url}/_sandbox/requests",
        params={"path_prefix": "/api/v4/leads/unsorted/forms"},
        timeout=10,
    ).json()
    return sum(1 for e in entries if e.get("method") == "POST")


@contextmanager
def captcha_verifier() -> Iterator[str]:
    """The local fake verifier as a process; yields its siteverify URL."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.captcha_verifier",
            str(port),
            GOOD_TOKEN,
            CAPTCHA_SECRET,
        ],
        cwd=Path(__file__).resolve().parents[2],
    )
    url = f"http://127.0.0.1:{port}/siteverify"
    try:
        wait_for_http(url, process=process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
