"""Building blocks for sandbox tests: the OAuth dance and typical request bodies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx

from amogate.amocrm.sandbox.config import SandboxConfig

JSON = dict[str, Any]
PUBLIC_URL = "http://sandbox.test"


def token_body(config: SandboxConfig, **fields: str) -> dict[str, str]:
    return {
        "client_id": config.client_id,
        "client_secret": config.client_secret,
        "redirect_uri": config.redirect_uri,
        **fields,
    }


async def new_code(client: httpx.AsyncClient) -> str:
    response = await client.post("/_sandbox/authorize", json={"state": "s1"})
    response.raise_for_status()
    code: str = response.json()["code"]
    return code


async def exchange(client: httpx.AsyncClient, config: SandboxConfig) -> JSON:
    """A full code exchange; the token response."""
    code = await new_code(client)
    response = await client.post(
        "/oauth2/access_token",
        json=token_body(config, grant_type="authorization_code", code=code),
    )
    assert response.status_code == 200, response.text
    tokens: JSON = response.json()
    return tokens


async def refresh(
    client: httpx.AsyncClient, config: SandboxConfig, refresh_token: str
) -> httpx.Response:
    return await client.post(
        "/oauth2/access_token",
        json=token_body(config, grant_type="refresh_token", refresh_token=refresh_token),
    )


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


def form_item(source_uid: str = "delivery-1", **overrides: Any) -> JSON:
    """One `POST /api/v4/leads/unsorted/forms` item, as the gateway sends it."""
    item: JSON = {
        "request_id": "0",
        "source_name": "Sayt example.uz",
        "source_uid": source_uid,
        "created_at": 1_750_000_000,
        "metadata": {
            "form_id": "contact_form",
            "form_name": "Обратная связь",
            "form_page": "https://example.uz/contacts",
            "form_sent_at": 1_750_000_000,
            "ip": "203.0.113.7",
            "referer": "https://www.google.com/",
        },
        "_embedded": {
            "leads": [
                {
                    "name": "Yangi mijoz",
                    "price": 50000,
                    "custom_fields_values": [
                        {"field_code": "UTM_SOURCE", "values": [{"value": "google"}]}
                    ],
                    "_embedded": {"tags": [{"name": "website"}]},
                }
            ],
            "contacts": [
                {
                    "name": "Alisher Navoi",
                    "custom_fields_values": [
                        {
                            "field_code": "PHONE",
                            "values": [{"value": "+998901234567", "enum_code": "MOB"}],
                        },
                        {
                            "field_code": "EMAIL",
                            "values": [{"value": "alisher@example.uz", "enum_code": "WORK"}],
                        },
                    ],
                }
            ],
        },
    }
    item.update(overrides)
    return item


def phone_field(*numbers: str) -> JSON:
    return {"field_code": "PHONE", "values": [{"value": n, "enum_code": "MOB"} for n in numbers]}


def email_field(*addresses: str) -> JSON:
    return {"field_code": "EMAIL", "values": [{"value": a, "enum_code": "WORK"} for a in addresses]}


async def new_contact(client: httpx.AsyncClient, auth: dict[str, str], **item: Any) -> int:
    """Create one contact through `POST /api/v4/contacts`; its id."""
    response = await client.post("/api/v4/contacts", json=[item], headers=auth)
    assert response.status_code == 200, response.text
    contact_id: int = response.json()["_embedded"]["contacts"][0]["id"]
    return contact_id


async def new_lead(client: httpx.AsyncClient, auth: dict[str, str], **item: Any) -> int:
    """Create one lead through `POST /api/v4/leads`; its id."""
    response = await client.post("/api/v4/leads", json=[item], headers=auth)
    assert response.status_code == 200, response.text
    lead_id: int = response.json()["_embedded"]["leads"][0]["id"]
    return lead_id


async def search_ids(
    client: httpx.AsyncClient, auth: dict[str, str], query: str, **params: str
) -> list[int]:
    """Ids `GET /api/v4/contacts?query=` finds, [] on amoCRM's 204."""
    response = await client.get("/api/v4/contacts", params={"query": query, **params}, headers=auth)
    if response.status_code == 204:
        assert response.content == b""
        return []
    assert response.status_code == 200, response.text
    return [c["id"] for c in response.json()["_embedded"]["contacts"]]


async def subscribe(
    client: httpx.AsyncClient, auth: dict[str, str], destination: str, *codes: str
) -> JSON:
    response = await client.post(
        "/api/v4/webhooks", json={"destination": destination, "settings": list(codes)}, headers=auth
    )
    assert response.status_code == 200, response.text
    webhook: JSON = response.json()
    return webhook


async def deliveries_until(
    client: httpx.AsyncClient, done: Callable[[list[JSON]], bool], timeout_s: float = 10.0
) -> list[JSON]:
    """Poll `GET /_sandbox/webhooks/deliveries` until `done(attempts)`."""
    deadline = time.monotonic() + timeout_s
    while True:
        attempts: list[JSON] = (await client.get("/_sandbox/webhooks/deliveries")).json()
        if done(attempts):
            return attempts
        if time.monotonic() > deadline:
            raise AssertionError(f"deliveries never got there: {attempts}")
        await asyncio.sleep(0.01)
