"""The request body limit and CORS (deny by default, exact origins only)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx

from amogate.app import create_app
from amogate.settings import Settings
from tests.conftest import open_app


async def test_body_over_the_limit_is_413_in_the_envelope(
    client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    response = await client.post(
        "/api/v1/leads/unsorted",
        content=b"{" + b" " * (1024 * 1024 + 10) + b"}",
        headers=api_headers,
    )
    assert response.status_code == 413
    assert response.json()["success"] is False
    assert response.json()["error"] == "Request body too large"


async def test_streamed_body_over_the_limit_is_413_without_content_length(
    settings_factory: Callable[..., Settings], api_headers: dict[str, str]
) -> None:
    app = create_app(settings_factory(max_body_bytes=2048))

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 1024

    async for c in open_app(app):
        response = await c.post("/api/v1/leads/unsorted", content=chunks(), headers=api_headers)
        assert response.status_code == 413
        assert response.json()["error"] == "Request body too large"


async def test_cors_allows_nothing_by_default(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/api/v1/leads/unsorted",
        headers={"Origin": "https://site.uz", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in response.headers
    simple = await client.get("/health", headers={"Origin": "https://site.uz"})
    assert "access-control-allow-origin" not in simple.headers


async def test_cors_allows_listed_origins_only_and_never_a_wildcard(
    settings_factory: Callable[..., Settings],
) -> None:
    app = create_app(settings_factory(cors_allowed_origins="https://site.uz,https://shop.uz"))
    async for c in open_app(app):
        allowed = await c.options(
            "/api/v1/leads/unsorted",
            headers={
                "Origin": "https://shop.uz",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-api-key,content-type",
            },
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://shop.uz"
        assert "access-control-allow-credentials" not in allowed.headers
        denied = await c.options(
            "/api/v1/leads/unsorted",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert denied.status_code == 400
        assert "access-control-allow-origin" not in denied.headers
        simple = await c.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in simple.headers
