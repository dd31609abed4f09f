"""The sandbox as a real process on a TCP port (`SandboxServer`): faults as a network shows them."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from amogate.amocrm.sandbox.config import SandboxConfig
from amogate.amocrm.sandbox.runner import SandboxServer
from amogate.amocrm.sandbox.server import effective_config, parse_args


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(rate_limit=0) as running:
        yield running


@pytest.fixture
def http(server: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=5) as client:
        client.post("/_sandbox/reset").raise_for_status()
        client.delete("/_sandbox/faults").raise_for_status()
        yield client


@pytest.fixture
def auth(http: httpx.Client, server: SandboxServer) -> dict[str, str]:
    code = http.post("/_sandbox/authorize", json={}).json()["code"]
    config = server.config
    tokens = http.post(
        "/oauth2/access_token",
        data={
            "client_id": config.client_id,
            "client_secret": config.client_secret,
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": config.redirect_uri,
        },
    ).json()
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def test_server_answers_like_amocrm_with_links_to_itself(
    http: httpx.Client, auth: dict[str, str], server: SandboxServer
) -> None:
    response = http.get("/api/v4/account", headers=auth)

    assert response.status_code == 200
    assert response.json()["_links"]["self"]["href"] == f"{server.url}/api/v4/account"


def test_consent_redirect_names_the_server_as_referer(
    http: httpx.Client, server: SandboxServer
) -> None:
    response = http.post(
        "/oauth/decide", data={"client_id": server.config.client_id, "decision": "allow"}
    )

    assert f"referer=127.0.0.1%3A{server.port}" in response.headers["location"]


def test_down_drops_the_connection_without_any_http_answer(
    http: httpx.Client, auth: dict[str, str], server: SandboxServer
) -> None:
    http.post("/_sandbox/faults", json={"mode": "down", "duration_s": 30}).raise_for_status()

    with (
        httpx.Client(base_url=server.url, timeout=5) as fresh,
        pytest.raises(httpx.TransportError) as caught,
    ):
        fresh.get("/api/v4/account", headers=auth)
    assert not isinstance(caught.value, httpx.TimeoutException)

    # The control API still answers while the API is "down".
    stats = http.get("/_sandbox/stats").json()
    assert stats["by_fault"] == {"down": 1}
    assert stats["by_status"] == {"200": 1, "none": 1}
    http.delete("/_sandbox/faults").raise_for_status()
    assert http.get("/api/v4/account", headers=auth).status_code == 200


def test_timeout_holds_the_request_without_answering(
    http: httpx.Client, auth: dict[str, str], server: SandboxServer
) -> None:
    http.post("/_sandbox/faults", json={"mode": "timeout", "duration_s": 30}).raise_for_status()
    started = time.perf_counter()

    with (
        httpx.Client(base_url=server.url, timeout=httpx.Timeout(5, read=0.5)) as fresh,
        pytest.raises(httpx.ReadTimeout),
    ):
        fresh.get("/api/v4/account", headers=auth)

    assert time.perf_counter() - started >= 0.5
    http.delete("/_sandbox/faults").raise_for_status()
    assert http.get("/api/v4/account", headers=auth).status_code == 200


def test_server_status_faults_come_over_the_wire(http: httpx.Client, auth: dict[str, str]) -> None:
    http.post("/_sandbox/faults", json={"mode": "html429", "count": 1}).raise_for_status()

    response = http.get("/api/v4/account", headers=auth)

    assert response.status_code == 429
    assert response.headers["content-type"].startswith("text/html")


def test_server_enforces_the_budget_when_asked() -> None:
    with (
        SandboxServer(rate_limit=3) as limited,
        httpx.Client(base_url=limited.url, timeout=5) as client,
    ):
        statuses = [client.get("/api/v4/account").status_code for _ in range(4)]

    # Unauthenticated calls still spend the caller's budget before the token check.
    assert statuses == [401, 401, 401, 429]


def test_command_line_flags_build_the_config() -> None:
    config, host, port = parse_args(
        [
            "--port",
            "9200",
            "--subdomain",
            "demo",
            "--client-id",
            "cid",
            "--client-secret",
            "sec",
            "--redirect-uri",
            "http://x/cb",
            "--long-lived-token",
            "tok",
            "--access-token-ttl",
            "60",
            "--rate-limit",
            "0",
        ]
    )

    assert (host, port) == ("127.0.0.1", 9200)
    assert config == SandboxConfig(
        subdomain="demo",
        client_id="cid",
        client_secret="sec",
        redirect_uri="http://x/cb",
        long_lived_token="tok",
        access_token_ttl=60,
        rate_limit=0,
    )


def test_default_public_url_follows_the_listening_port() -> None:
    anywhere = "0.0.0.0"  # noqa: S104 - only a string here, nothing binds
    moved = effective_config(SandboxConfig(), anywhere, 9300)
    kept = effective_config(SandboxConfig(public_url="https://sb.example.uz"), anywhere, 9300)

    assert moved.public_url == "http://127.0.0.1:9300"
    assert moved.referer == "127.0.0.1:9300"
    assert kept.public_url == "https://sb.example.uz"


def test_webhook_and_duplicate_control_flags_build_the_config() -> None:
    config, _, _ = parse_args(
        [
            "--duplicate-control",
            "--webhook-timeout-s",
            "0.5",
            "--webhook-retry-factor",
            "0.01",
            "--webhook-disable-failures",
            "7",
            "--webhook-disable-window-s",
            "60",
        ]
    )

    assert config == SandboxConfig(
        duplicate_control=True,
        webhook_timeout_s=0.5,
        webhook_retry_factor=0.01,
        webhook_disable_failures=7,
        webhook_disable_window_s=60.0,
    )
    runner = SandboxServer(config)
    assert parse_args(runner.args()[3:])[0] == runner.config  # the runner passes every flag on
