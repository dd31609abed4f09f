"""Shared request bodies and sandbox look-ups for the lead tests."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from amogate.leads.mapping import AccountFields
from tests.support.gateway import Harness

JSON = dict[str, Any]
URL = "/api/v1/leads/unsorted"

# Field lists in amoCRM's read shape (amocrm-api.md §4.3).
LEAD_FIELDS: list[JSON] = [
    {"id": 789, "name": "Company name", "code": None, "type": "text", "enums": None},
    {
        "id": 790,
        "name": "Product",
        "code": None,
        "type": "select",
        "enums": [{"id": 1, "value": "Premium"}, {"id": 2, "value": "Standard"}],
    },
    {
        "id": 791,
        "name": "Interests",
        "code": None,
        "type": "multiselect",
        "enums": [{"id": 11, "value": "Courses"}, {"id": 12, "value": "Service"}],
    },
    {"id": 801, "name": "utm_source", "code": "UTM_SOURCE", "type": "tracking_data"},
    {"id": 802, "name": "utm_medium", "code": "UTM_MEDIUM", "type": "tracking_data"},
    {"id": 803, "name": "utm_campaign", "code": "UTM_CAMPAIGN", "type": "tracking_data"},
]
CONTACT_FIELDS: list[JSON] = [
    {"id": 901, "name": "Phone", "code": "PHONE", "type": "multitext", "enums": []},
    {"id": 902, "name": "Email", "code": "EMAIL", "type": "multitext", "enums": []},
    {"id": 903, "name": "Telegram", "code": None, "type": "text", "enums": None},
]
FIELDS = AccountFields(lead=LEAD_FIELDS, contact=CONTACT_FIELDS)


def readme_example(pipeline_id: int, **lead: Any) -> JSON:
    """The original README's request (SPEC §3) with the sandbox's ids."""
    return {
        "source": "website",
        "form_name": "Contact Form",
        "form_page": "https://site/contact",
        "referer": "https://google.com",
        "ip": "127.0.0.1",
        "pipeline_id": pipeline_id,
        "lead": {
            "name": "Yangi mijoz",
            "price": 50000,
            "tags": ["website", {"name": "hot"}],
            **lead,
        },
        "contact": {
            "name": "Alisher Navoi",
            "phone": "+998901234567",
            "email": "alisher@example.com",
        },
        "utm": {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring_sale"},
        "comment": "Mijoz maxsulot haqida so'radi",
    }


def simple_lead(n: int) -> JSON:
    return {
        "lead": {"name": f"Lead {n}", "price": n},
        "contact": {"name": f"Client {n}", "phone": f"+99890{n:07d}"},
        "comment": f"comment {n}",
    }


async def api_json(h: Harness, path: str) -> Any:
    response = await h.sandbox_api("GET", path)
    if response.status_code == 204:
        return {}
    response.raise_for_status()
    return response.json()


async def lead_notes(h: Harness, lead_id: int, *, within: float = 10.0) -> list[JSON]:
    """The lead's notes in amoCRM, once there are any: a synchronous answer comes as soon as
    the lead exists, and its note follows in the worker's next notes batch."""
    deadline = time.monotonic() + within
    while True:
        notes = await api_json(h, f"/api/v4/leads/{lead_id}/notes")
        found: list[JSON] = (notes.get("_embedded") or {}).get("notes") or []
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


async def lead_fields(h: Harness) -> list[JSON]:
    fields: list[JSON] = []
    page = 1
    while True:
        body = await api_json(h, f"/api/v4/leads/custom_fields?page={page}&limit=50")
        fields += body.get("_embedded", {}).get("custom_fields", [])
        if "next" not in body.get("_links", {}):
            return fields
        page += 1


async def main_pipeline_id(h: Harness) -> int:
    body = await api_json(h, "/api/v4/leads/pipelines")
    pipelines = body["_embedded"]["pipelines"]
    return int(next(p["id"] for p in pipelines if p["is_main"]))


async def unsorted_items(h: Harness) -> list[JSON]:
    items: list[JSON] = []
    page = 1
    while True:
        body = await api_json(
            h, f"/api/v4/leads/unsorted?page={page}&limit=250&filter[category][]=forms"
        )
        batch = body.get("_embedded", {}).get("unsorted", [])
        items += batch
        if len(batch) < 250:
            return items
        page += 1


async def all_leads(h: Harness) -> list[JSON]:
    leads: list[JSON] = []
    page = 1
    while True:
        body = await api_json(h, f"/api/v4/leads?page={page}&limit=250")
        batch = body.get("_embedded", {}).get("leads", [])
        leads += batch
        if len(batch) < 250:
            return leads
        page += 1


async def delivery(h: Harness, delivery_id: str, headers: dict[str, str]) -> JSON:
    """The delivery as the API shows it; a lead whose note is still on its way (a synchronous
    answer does not wait for it) is read again until the note step is over."""
    deadline = time.monotonic() + 10
    while True:
        response = await h.gateway.get(f"/api/v1/leads/deliveries/{delivery_id}", headers=headers)
        assert response.status_code == 200, response.text
        data: JSON = response.json()["data"]
        note_pending = data["status"] == "sending" and data["step"] == "note"
        if not note_pending or time.monotonic() > deadline:
            return data
        await asyncio.sleep(0.05)


async def wait_until_settled(
    client: httpx.AsyncClient,
    ids: list[str],
    headers: dict[str, str],
    *,
    within: float = 60.0,
) -> dict[str, str]:
    """Poll the delivery API until every delivery is delivered or failed."""
    deadline = time.monotonic() + within
    statuses: dict[str, str] = {}
    while True:
        for delivery_id in ids:
            if statuses.get(delivery_id) in ("delivered", "failed"):
                continue
            response = await client.get(f"/api/v1/leads/deliveries/{delivery_id}", headers=headers)
            statuses[delivery_id] = response.json()["data"]["status"]
        if all(s in ("delivered", "failed") for s in statuses.values()):
            return statuses
        if time.monotonic() > deadline:
            return statuses
        await asyncio.sleep(0.2)
