"""Routing errors and content types against amocrm-api.md §3."""

from __future__ import annotations

import httpx


async def test_unknown_route_is_404_cannot_get(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await sandbox.get("/api/v4/example", headers=auth)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "title": "Not Found",
        "type": "https://httpstatus.es/404",
        "status": 404,
        "detail": "Cannot GET http://sandbox.test/api/v4/example",
    }


async def test_wrong_method_is_405(sandbox: httpx.AsyncClient, auth: dict[str, str]) -> None:
    response = await sandbox.put("/api/v4/leads/pipelines", json=[], headers=auth)

    assert response.status_code == 405
    assert response.json() == {
        "title": "Method Not Allowed",
        "type": "https://httpstatus.es/405",
        "status": 405,
        "detail": "Method Not Allowed",
    }


async def test_malformed_json_is_400(sandbox: httpx.AsyncClient, auth: dict[str, str]) -> None:
    response = await sandbox.post(
        "/api/v4/leads", content=b"[{", headers={**auth, "Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


async def test_object_instead_of_array_is_invalid_type(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await sandbox.post("/api/v4/leads", json={"name": "x"}, headers=auth)

    assert response.status_code == 400
    error = response.json()["validation-errors"][0]["errors"][0]
    assert error["code"] == "InvalidType"


async def test_russian_and_uzbek_text_is_not_escaped(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await sandbox.get("/api/v4/leads/pipelines", headers=auth)

    assert "Неразобранное".encode() in response.content
    assert b"Bog'lanildi" in response.content
