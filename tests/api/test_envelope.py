"""Every row of the original gateway's error table, and the exact /health answer."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter

from amogate.app import create_app
from amogate.leads.reading import NOT_A_PRICE, parse_lead_request
from amogate.settings import Settings
from tests.conftest import open_app


async def test_health_answers_exactly_like_the_original(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.content == (
        b'{"success":true,"message":"Gateway is running","data":{"status":"ok"}}'
    )
    assert response.headers["content-type"] == "application/json"


async def test_unknown_route_names_the_path(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nothing/here")
    assert response.status_code == 404
    assert response.json() == {
        "success": False,
        "error": "Endpoint not found: /api/v1/nothing/here",
    }


async def test_wrong_method_is_405_in_the_envelope(client: httpx.AsyncClient) -> None:
    response = await client.delete("/health")
    assert response.status_code == 405
    assert response.json() == {"success": False, "error": "Method not allowed"}


async def test_missing_api_key_gets_the_original_401_body(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/leads/unsorted", json={})
    assert response.status_code == 401
    assert response.json() == {
        "success": False,
        "error": "Invalid or missing API key",
        "message": "Please provide valid X-API-KEY header",
    }


async def test_wrong_api_key_gets_401(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/leads/unsorted", json={}, headers={"X-API-KEY": "wrong-key-wrong-key"}
    )
    assert response.status_code == 401
    assert response.json()["error"] == "Invalid or missing API key"


async def test_body_that_is_not_json_is_400_with_the_parser_message(
    client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    response = await client.post(
        "/api/v1/leads/unsorted",
        content=b'{"lead": {"name": "x",}',
        headers={**api_headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False
    assert body["error"] == "Invalid JSON"
    assert "line 1" in body["details"]["json_error"]


async def test_validation_errors_use_the_original_messages_all_at_once(
    client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    response = await client.post("/api/v1/leads/unsorted", json={}, headers=api_headers)
    assert response.status_code == 422
    assert response.json() == {
        "success": False,
        "error": "Validation failed",
        "details": {"lead": "Lead object is required", "contact": "Contact object is required"},
    }


async def test_non_ascii_text_is_not_escaped(
    client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    response = await client.get("/api/v1/заявка", headers=api_headers)
    assert response.status_code == 404
    assert "\\u" not in response.text
    assert "Endpoint not found: /api/v1/заявка" in response.text


async def test_valid_lead_without_delivery_is_503_never_a_fake_success(
    client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    response = await client.post(
        "/api/v1/leads/unsorted",
        json={"lead": {"name": "Yangi mijoz"}, "contact": {"name": "Alisher"}},
        headers=api_headers,
    )
    assert response.status_code == 503
    assert response.json() == {"success": False, "error": "amoCRM delivery is not configured"}


@pytest.fixture
async def exploding_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    router = APIRouter()

    @router.get("/api/v1/explode")
    async def explode() -> None:
        raise RuntimeError("secret-token-value leaked? /srv/app/file.py line 3")

    app.include_router(router)
    async for c in open_app(app):
        yield c


async def test_unexpected_failure_is_500_without_exception_text(
    exploding_client: httpx.AsyncClient,
) -> None:
    transport = exploding_client._transport
    assert isinstance(transport, httpx.ASGITransport)
    transport.raise_app_exceptions = False
    response = await exploding_client.get("/api/v1/explode")
    assert response.status_code == 500
    assert response.json() == {"success": False, "error": "An unexpected error occurred"}
    assert "secret" not in response.text


async def test_every_answer_carries_a_request_id(client: httpx.AsyncClient) -> None:
    generated = await client.get("/health")
    assert len(generated.headers["x-request-id"]) == 32
    echoed = await client.get("/health", headers={"X-Request-ID": "form-42.abc"})
    assert echoed.headers["x-request-id"] == "form-42.abc"
    forged = await client.get("/health", headers={"X-Request-ID": "evil\nline " + "x" * 200})
    assert forged.headers["x-request-id"] != "evil"
    assert len(forged.headers["x-request-id"]) == 32


async def test_openapi_documents_the_envelope_and_the_lead_body(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert {"SuccessEnvelope", "ErrorEnvelope"} <= set(schema["components"]["schemas"])
    body = schema["paths"]["/api/v1/leads/unsorted"]["post"]["requestBody"]
    assert "lead" in json.dumps(body)
    docs = await client.get("/docs")
    assert docs.status_code == 200


async def test_every_reference_in_openapi_resolves_inside_the_document(
    client: httpx.AsyncClient,
) -> None:
    schema = (await client.get("/openapi.json")).json()
    text = json.dumps(schema)
    references = set(re.findall(r'"\$ref": "#/([^"]+)"', text))
    assert "components/schemas/LeadIn" in references  # the lead body's models are referenced
    for reference in references:
        node = schema
        for part in reference.split("/"):
            assert part in node, f"#/{reference} does not resolve"
            node = node[part]


async def test_openapi_bounds_the_lead_price_as_the_gateway_enforces_it(
    client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    schema = (await client.get("/openapi.json")).json()
    price = schema["components"]["schemas"]["LeadIn"]["properties"]["price"]
    bounded = [member for member in price["anyOf"] if member.get("type") != "null"]
    assert bounded
    for member in bounded:
        assert member.get("minimum") == 0, member  # JSON Schema's keywords, not pydantic's ge/le
        maximum = int(member["maximum"])
    # A larger price is no reason to lose the lead: it is left out with a warning.
    lead = {"lead": {"name": "Big deal", "price": maximum + 1}, "contact": {"name": "Aziz"}}
    request = parse_lead_request(lead)
    assert request.lead.price is None
    assert request.warnings == [{"field": "lead.price", "problem": NOT_A_PRICE}]
    assert parse_lead_request({**lead, "lead": {"name": "Deal", "price": maximum}}).lead.price
