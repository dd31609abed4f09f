"""Webhooks from the sandbox running as its own process (`SandboxServer`), over real TCP."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from amogate.amocrm.sandbox.runner import SandboxServer
from amogate.amocrm.webhook_format import parse_webhook
from tests.sandbox.helpers import JSON
from tests.sandbox.receiver import Receiver

SECOND_STAGE = 71_000_013


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(
        rate_limit=0, webhook_retry_factor=0.0001, webhook_disable_failures=2
    ) as running:
        yield running


@pytest.fixture
def http(server: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        client.post("/_sandbox/reset").raise_for_status()
        code = client.post("/_sandbox/authorize", json={}).json()["code"]
        config = server.config
        tokens = client.post(
            "/oauth2/access_token",
            json={
                "client_id": config.client_id,
                "client_secret": config.client_secret,
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": config.redirect_uri,
            },
        ).json()
        client.headers["Authorization"] = f"Bearer {tokens['access_token']}"
        yield client


def recorded(http: httpx.Client, count: int) -> list[JSON]:
    """The sandbox's delivery log once it holds `count` attempts (it records after the answer)."""
    deadline = time.monotonic() + 10
    while len(attempts := http.get("/_sandbox/webhooks/deliveries").json()) < count:
        assert time.monotonic() < deadline, attempts
        time.sleep(0.01)
    return list(attempts)


def test_the_command_line_flags_set_the_webhook_policy(http: httpx.Client) -> None:
    assert http.get("/_sandbox/settings").json() == {
        "duplicate_control": False,
        "webhook_timeout_s": 2.0,
        "webhook_retry_factor": 0.0001,
        "webhook_disable_failures": 2,
        "webhook_disable_window_s": 7200.0,
    }


def test_a_status_change_arrives_over_the_wire_and_the_log_shows_the_answer(
    http: httpx.Client, server: SandboxServer
) -> None:
    with Receiver() as receiver:
        http.post(
            "/api/v4/webhooks", json={"destination": receiver.url, "settings": ["status_lead"]}
        ).raise_for_status()
        created = http.post("/api/v4/leads", json=[{"name": "Simsiz quloqchin"}])
        lead_id = created.json()["_embedded"]["leads"][0]["id"]

        moved = http.patch(f"/api/v4/leads/{lead_id}", json={"status_id": SECOND_STAGE})

        assert moved.status_code == 200
        (post,) = receiver.wait_for(1)
        (event,) = parse_webhook(post.body).events
        assert (event.entity, event.action, event.data["id"]) == ("lead", "status", str(lead_id))
        assert event.data["old_status_id"] == "71000012"
        assert parse_webhook(post.body).account["_links"] == {"self": server.url}
        (attempt,) = recorded(http, 1)
        assert (attempt["status"], attempt["outcome"]) == (200, "ok")
        assert 0 <= attempt["latency_ms"] < 2000


def test_a_failing_destination_is_disabled_and_shown_disabled(http: httpx.Client) -> None:
    with Receiver() as receiver:
        receiver.status = 503
        http.post(
            "/api/v4/webhooks", json={"destination": receiver.url, "settings": ["add_lead"]}
        ).raise_for_status()

        http.post("/api/v4/leads", json=[{"name": "x"}]).raise_for_status()

        receiver.wait_for(3)
        deadline = time.monotonic() + 10
        while not http.get("/api/v4/webhooks").json()["_embedded"]["webhooks"][0]["disabled"]:
            assert time.monotonic() < deadline, "the webhook was never disabled"
            time.sleep(0.01)
        attempts = recorded(http, 3)
        assert [(a["status"], a["webhook_disabled"]) for a in attempts] == [
            (503, False),
            (503, False),
            (503, True),
        ]
