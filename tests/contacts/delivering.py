"""Driving the gateway's API and its delivery worker against the sandbox, for the contact and
direct-mode tests."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from amogate.amocrm.sandbox.runner import SandboxServer
from amogate.app_state import state_of
from amogate.contacts.index import MAX_PAGES, ContactIndex
from amogate.storage import deliveries as store
from amogate.worker.deliver import Deliverer
from amogate.worker.worker import deliverer_from
from tests.leads.helpers import URL, api_json
from tests.support.gateway import Harness

JSON = dict[str, Any]
QUEUE_ONLY: dict[str, Any] = {"lead_sync_timeout": 0, "delivery_retry_base_seconds": 0.2}


def worker(h: Harness, lookup: str = "index", **overrides: Any) -> Deliverer:
    """A delivery worker as `amogate worker` builds it. `lookup="search"`: contacts are found
    by amoCRM's `query` search, as for an account too large to index."""
    made = deliverer_from(
        state_of(h.app).settings, state_of(h.app).running().database, h.amo, h.info, None
    )
    if made.contacts is not None:
        # every batch sees the contacts made a moment ago; max_pages=0: never indexed
        pages = 0 if lookup == "search" else MAX_PAGES
        made.contacts.index_factory = lambda: ContactIndex(refresh_interval=0, max_pages=pages)
    for key, value in overrides.items():
        setattr(made, key, value)
    return made


async def queue(h: Harness, bodies: list[JSON], headers: dict[str, str]) -> list[str]:
    answers = await asyncio.gather(*(h.gateway.post(URL, json=b, headers=headers) for b in bodies))
    for answer in answers:
        assert answer.status_code == 202, answer.text
    return [a.json()["data"]["delivery_id"] for a in answers]


async def drain(h: Harness, *workers: Deliverer) -> None:
    """Run the workers side by side until every lead is delivered or failed."""
    try:
        for _ in range(50):
            await asyncio.gather(*(w.run_once() for w in workers))
            async with state_of(h.app).running().database.read() as conn:
                counts = await store.count_by_status(conn)
            if counts.get(store.QUEUED, 0) + counts.get(store.RETRYING, 0) == 0:
                return
            await asyncio.sleep(0.3)
        raise AssertionError(f"not drained: {counts}")
    finally:
        for w in workers:
            await w.close()


async def make_contact(h: Harness, name: str, *, phone: str = "", email: str = "") -> JSON:
    values: list[JSON] = []
    if phone:
        values.append({"field_code": "PHONE", "values": [{"value": phone, "enum_code": "MOB"}]})
    if email:
        values.append({"field_code": "EMAIL", "values": [{"value": email}]})
    response = await h.sandbox_api(
        "POST", "/api/v4/contacts", json=[{"name": name, "custom_fields_values": values}]
    )
    response.raise_for_status()
    contact_id = response.json()["_embedded"]["contacts"][0]["id"]
    stored: JSON = await api_json(h, f"/api/v4/contacts/{contact_id}")
    return stored


def contacts_held(server: SandboxServer) -> int:
    """How many contacts the sandbox holds, hidden ones (of unsorted items) included."""
    stats = httpx.get(f"{server.url}/_sandbox/stats", timeout=10).json()
    return int(stats["entities"]["contacts"])


async def lead_contact(h: Harness, lead_id: int) -> int:
    lead = await api_json(h, f"/api/v4/leads/{lead_id}?with=contacts")
    [linked] = lead["_embedded"]["contacts"]
    return int(linked["id"])


def lead(n: int, **contact: Any) -> JSON:
    return {
        "lead": {"name": f"Lead {n}", "price": n},
        "contact": {"name": f"Visitor {n}", **contact},
        "comment": f"comment {n}",
    }
