"""The API's other surfaces against a caller with some key (or none): /metrics, another key's
deliveries, `?refresh=true` spent against the account's amoCRM budget, and bodies built to
crash the parser."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_API_KEY
from tests.security.support import LEAD, Deployment, deployment
from tests.support.processes import gateway_env, run_amogate

pytestmark = pytest.mark.slow


def _key(d: Deployment, name: str, *scopes: str) -> str:
    args = ["keys", "create", name]
    for scope in scopes:
        args += ["--scope", scope]
    created = run_amogate(d.folder, gateway_env(d.folder), *args)
    assert created.returncode == 0, created.stderr
    return created.stdout.strip().splitlines()[-1].strip()


def test_metrics_needs_an_admin_key(tmp_path: Path) -> None:
    with deployment(tmp_path) as d:
        reader = _key(d, "grafana", "info:read")
        anonymous = httpx.get(f"{d.url}/metrics")
        wrong = httpx.get(f"{d.url}/metrics", headers={"Authorization": "Bearer " + "x" * 30})
        not_admin = httpx.get(f"{d.url}/metrics", headers={"Authorization": f"Bearer {reader}"})
        header = httpx.get(f"{d.url}/metrics", headers={"X-API-KEY": TEST_API_KEY})
        bearer = httpx.get(f"{d.url}/metrics", headers={"Authorization": f"Bearer {TEST_API_KEY}"})

    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "Invalid or missing API key"
    assert "amogate_" not in anonymous.text
    assert wrong.status_code == 401
    assert not_admin.status_code == 403
    assert header.status_code == 200
    assert bearer.status_code == 200
    assert "amogate_queue_depth" in bearer.text


def test_metrics_public_opens_metrics_on_purpose(tmp_path: Path) -> None:
    with deployment(tmp_path, METRICS_PUBLIC="true") as d:
        response = httpx.get(f"{d.url}/metrics")

    assert response.status_code == 200
    assert "amogate_queue_depth" in response.text


def test_a_key_cannot_read_another_keys_delivery(tmp_path: Path) -> None:
    with deployment(tmp_path) as d:
        assert d.connect().status_code == 200
        shop = _key(d, "shop", "leads:write", "deliveries:read")
        bot = _key(d, "bot", "leads:write", "deliveries:read")
        sent = d.send_lead(LEAD, key=shop)
        assert sent.status_code == 200, sent.text
        delivery_id = sent.json()["data"]["delivery_id"]

        def read(key: str, delivery: str = delivery_id) -> httpx.Response:
            return httpx.get(
                f"{d.url}/api/v1/leads/deliveries/{delivery}", headers={"X-API-KEY": key}
            )

        by_bot, unknown = read(bot), read(bot, "0" * 32)
        by_shop, by_admin = read(shop), read(TEST_API_KEY)

    assert by_bot.status_code == 404
    # Indistinguishable from an id that does not exist: nothing about it leaks.
    assert by_bot.json()["error"] == f"Delivery not found: {delivery_id}"
    assert unknown.json()["error"] == f"Delivery not found: {'0' * 32}"
    assert "Alisher" not in by_bot.text
    assert by_shop.status_code == 200
    # The answer came once the lead existed in amoCRM; its note may still be on the way.
    assert by_shop.json()["data"]["status"] in {"sending", "delivered"}
    assert by_shop.json()["data"]["delivery_id"] == delivery_id
    assert by_admin.status_code == 200


def test_repeated_refresh_reaches_amocrm_at_most_once_per_ten_seconds(tmp_path: Path) -> None:
    with deployment(tmp_path) as d:
        assert d.connect().status_code == 200
        reader = _key(d, "dashboard", "info:read")
        before = d.sandbox_calls("/api/v4/account")
        statuses = set()
        with httpx.Client(base_url=d.url, headers={"X-API-KEY": reader}, timeout=15) as http:
            for _ in range(30):
                response = http.get("/api/v1/info/account", params={"refresh": "true"})
                statuses.add(response.status_code)
        calls = d.sandbox_calls("/api/v4/account") - before

    assert statuses == {200}
    assert calls == 1


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000, b'{"a":' * 50_000, b'{"lead":' + b"[" * 5000 + b"]" * 5000 + b"}"],
    ids=["100k-brackets", "50k-objects", "balanced-5k"],
)
def test_deeply_nested_json_is_a_400_and_leaves_no_trace_in_error_log(
    tmp_path: Path, body: bytes
) -> None:
    with deployment(tmp_path) as d:
        response = httpx.post(
            f"{d.url}/api/v1/leads/unsorted",
            content=body,
            headers={"X-API-KEY": TEST_API_KEY, "Content-Type": "application/json"},
        )
        alive = httpx.get(f"{d.url}/health")
        log = d.log

    assert response.status_code == 400
    assert response.json()["error"] == "Invalid JSON"
    assert "json_error" in response.json()["details"]
    assert alive.status_code == 200
    assert not d.error_log.exists() or d.error_log.read_text() == ""
    assert "Traceback" not in log
    assert "RecursionError" not in log
