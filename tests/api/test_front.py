"""The front door (`amogate.api.front`): /health and fresh cached reads answered before the
framework, with the same bytes, headers, key checks and metrics as the full path."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.types import Message

from amogate.api.front import GatewayApp
from amogate.api.info import READS
from amogate.settings import Settings
from tests.ops.support import issue_key, revoke_key
from tests.support.gateway import Harness, connected_gateway

SAME_HEADERS = ("content-type", "content-length", "etag", "cache-control", "x-cache")


async def call(
    app: GatewayApp, path: str, headers: dict[str, str], *, method: str = "GET", body: bytes = b""
) -> tuple[dict[str, Any], int]:
    """One request straight through the ASGI app; the scope afterwards and the status."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("gateway.test", 80),
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return scope, int(sent[0]["status"])


async def warm(h: Harness, headers: dict[str, str]) -> None:
    for path in READS:
        response = await h.gateway.get(path, headers=headers)
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", list(READS))
async def test_a_fresh_cached_read_is_the_same_from_the_front_door_and_the_full_path(
    path: str, settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings) as h:
        await warm(h, api_headers)
        front = await h.gateway.get(path, headers=api_headers)
        # A query string sends the request the full way (routing, dependencies, handler).
        full = await h.gateway.get(path, params={"refresh": "false"}, headers=api_headers)
        assert front.status_code == full.status_code == 200
        assert front.content == full.content
        for name in SAME_HEADERS:
            assert front.headers[name] == full.headers[name], name
        assert front.headers["x-cache"] == "HIT"
        assert front.headers["x-request-id"] != full.headers["x-request-id"]
        # And the first really was answered in front: the router never saw it.
        assert isinstance(h.app, GatewayApp)
        scope, status = await call(h.app, path, api_headers)
        assert status == 200
        assert "route" not in scope


async def test_health_is_answered_in_front_with_the_original_bytes(settings: Settings) -> None:
    async with connected_gateway(settings) as h:
        front = await h.gateway.get("/health", headers={"X-Request-ID": "probe-1"})
        full = await h.gateway.get("/health/")
        assert front.status_code == full.status_code == 200
        assert (
            front.content
            == full.content
            == (b'{"success":true,"message":"Gateway is running","data":{"status":"ok"}}')
        )
        assert front.headers["content-type"] == full.headers["content-type"]
        assert front.headers["x-request-id"] == "probe-1"
        assert isinstance(h.app, GatewayApp)
        scope, status = await call(h.app, "/health", {})
        assert (status, "route" in scope) == (200, False)


async def test_the_front_door_checks_keys_as_the_full_path_does(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings) as h:
        await warm(h, api_headers)
        reader, _ = await issue_key(settings.database_url, "reader", ["info:read"])
        writer, _ = await issue_key(settings.database_url, "writer", ["leads:write"])
        path = "/api/v1/info/pipelines"
        ok = await h.gateway.get(path, headers={"X-API-KEY": reader})
        assert ok.status_code == 200
        assert ok.headers["x-cache"] == "HIT"
        for headers, status in [
            ({}, 401),
            ({"X-API-KEY": "wrong-key"}, 401),
            ({"X-API-KEY": writer}, 403),
        ]:
            front = await h.gateway.get(path, headers=headers)
            full = await h.gateway.get(path, params={"refresh": "false"}, headers=headers)
            assert front.status_code == full.status_code == status
            assert front.json() == full.json()
        await revoke_key(settings.database_url, "reader")
        refused = await h.gateway.get(path, headers={"X-API-KEY": reader})
        assert refused.status_code == 401


async def test_the_front_door_answers_304_and_counts_its_requests(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings) as h:
        await warm(h, api_headers)
        path = "/api/v1/info/account"
        first = await h.gateway.get(path, headers=api_headers)
        again = await h.gateway.get(
            path, headers={**api_headers, "If-None-Match": first.headers["etag"]}
        )
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == first.headers["etag"]
        await h.gateway.get("/health")
        metrics = (await h.gateway.get("/metrics", headers=api_headers)).text
        assert 'route="/api/v1/info/account",status="304"' in metrics
        assert 'amogate_http_requests_total{method="GET",route="/health",status="200"}' in metrics


async def test_a_request_with_an_origin_goes_the_full_way_for_its_cors_headers(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, cors_allowed_origins=["https://shop.example"]) as h:
        await warm(h, api_headers)
        headers = {**api_headers, "Origin": "https://shop.example"}
        response = await h.gateway.get("/api/v1/info/pipelines", headers=headers)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "https://shop.example"
        health = await h.gateway.get("/health", headers={"Origin": "https://shop.example"})
        assert health.headers["access-control-allow-origin"] == "https://shop.example"


async def test_a_copy_past_its_ttl_is_fetched_again_as_by_the_full_path(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, info_cache_ttl=0) as h:
        for _ in range(2):
            response = await h.gateway.get("/api/v1/info/pipelines", headers=api_headers)
            assert response.status_code == 200
            assert response.headers["x-cache"] == "MISS"  # fetched again each time, not HIT


LEAD = {"lead": {"name": "Front door lead"}, "contact": {"name": "Ali", "phone": "+998901234567"}}


async def test_a_lead_through_the_front_door_is_taken_as_by_the_full_path(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, lead_sync_timeout=0) as h:
        headers = {**api_headers, "X-Request-ID": "form-42"}
        front = await h.gateway.post("/api/v1/leads/unsorted", json=LEAD, headers=headers)
        # A query string sends the request the full way.
        full = await h.gateway.post(
            "/api/v1/leads/unsorted", params={"via": "full"}, json=LEAD, headers=api_headers
        )
        assert front.status_code == full.status_code == 202
        assert front.headers["x-request-id"] == "form-42"
        assert {k: v for k, v in front.json()["data"].items() if k != "delivery_id"} == {
            k: v for k, v in full.json()["data"].items() if k != "delivery_id"
        }
        stored = await h.gateway.get(
            f"/api/v1/leads/deliveries/{front.json()['data']['delivery_id']}", headers=api_headers
        )
        assert stored.json()["data"]["lead_name"] == "Front door lead"
        body = json.dumps(LEAD).encode()
        sent = {**api_headers, "Content-Type": "application/json", "Content-Length": str(len(body))}
        assert isinstance(h.app, GatewayApp)
        scope, status = await call(h.app, "/api/v1/leads/unsorted", sent, method="POST", body=body)
        assert (status, "route" in scope) == (202, False)
        metrics = (await h.gateway.get("/metrics", headers=api_headers)).text
        assert (
            'amogate_http_requests_total{method="POST",route="/api/v1/leads/unsorted",'
            'status="202"} 3.0' in metrics
        )


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b'{"lead": ', {}, 400),
        (b'{"lead": {}}', {}, 422),
        (b"{}", {"X-API-KEY": "wrong"}, 401),
        (b"{}", {"Idempotency-Key": " "}, 422),
    ],
    ids=["malformed JSON", "invalid lead", "wrong key", "blank idempotency key"],
)
async def test_a_refused_lead_gets_the_same_answer_from_the_front_door(
    body: bytes,
    headers: dict[str, str],
    status: int,
    settings: Settings,
    api_headers: dict[str, str],
) -> None:
    async with connected_gateway(settings, lead_sync_timeout=0) as h:
        sent = {**api_headers, "Content-Type": "application/json", **headers}
        front = await h.gateway.post("/api/v1/leads/unsorted", content=body, headers=sent)
        full = await h.gateway.post(
            "/api/v1/leads/unsorted", params={"via": "full"}, content=body, headers=sent
        )
        assert front.status_code == full.status_code == status
        assert front.json() == full.json()


async def test_a_key_without_the_leads_scope_is_refused_in_front(
    settings: Settings,
) -> None:
    async with connected_gateway(settings, lead_sync_timeout=0) as h:
        reader, _ = await issue_key(settings.database_url, "reader", ["info:read"])
        response = await h.gateway.post(
            "/api/v1/leads/unsorted", json=LEAD, headers={"X-API-KEY": reader}
        )
        assert response.status_code == 403
        assert response.json()["error"] == "API key lacks scope leads:write"
