"""The inbound route in-process: amoCRM's captured-format bodies become JSON events (several
entities, several items, custom fields, unicode), stored with their deliveries; a wrong secret,
an unknown account, a bad body or a repeat store nothing more."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI

from amogate.app import create_app
from amogate.app_state import state_of
from amogate.relay import subscribers
from amogate.settings import Settings
from amogate.storage import relay as store
from amogate.storage import relay_queue as queue
from amogate.storage.db import Database

# Shaped as amoCRM posts them (amocrm-api.md §4.11): a status change with a select field, a new
# contact with a Cyrillic name and a phone, a company (under `contacts` with type=company), a
# note on a lead and a second status change in the same post.
CAPTURED = "&".join(
    [
        "leads[status][0][id]=15318175",
        "leads[status][0][status_id]=67548619",
        "leads[status][0][old_status_id]=67548607",
        "leads[status][0][pipeline_id]=8572511",
        "leads[status][0][price]=1000",
        "leads[status][0][responsible_user_id]=12345678",
        "leads[status][0][custom_fields][0][id]=1246489",
        "leads[status][0][custom_fields][0][name]=Select",
        "leads[status][0][custom_fields][0][values][0][value]=2",
        "leads[status][0][custom_fields][0][values][0][enum]=908107",
        "leads[status][0][custom_fields][1][id]=1246490",
        "leads[status][0][custom_fields][1][name]=" + quote("Yetkazish sanasi"),
        "leads[status][0][custom_fields][1][values][0]=1729717200",
        "leads[status][0][created_at]=1726572752",
        "leads[status][0][updated_at]=1726572758",
        "leads[status][1][id]=15318176",
        "leads[status][1][status_id]=142",
        "leads[status][1][old_status_id]=67548619",
        "leads[status][1][pipeline_id]=8572511",
        "leads[status][1][updated_at]=1726572760",
        "contacts[add][0][id]=900",
        "contacts[add][0][type]=contact",
        "contacts[add][0][name]=" + quote("Дилноза Каримова"),
        "contacts[add][0][custom_fields][0][code]=PHONE",
        "contacts[add][0][custom_fields][0][values][0][value]=" + quote("+998 90 111 22 33"),
        "contacts[add][1][id]=901",
        "contacts[add][1][type]=company",
        "contacts[add][1][name]=" + quote("O‘zbek Savdo MChJ"),
        "leads[note][0][note][id]=55",
        "leads[note][0][note][element_id]=15318175",
        "leads[note][0][note][element_type]=2",
        "leads[note][0][note][note_type]=4",
        "leads[note][0][note][text]=" + quote("Mijoz qo‘ng‘iroq qildi ✓"),
        "account[subdomain]=test",
        "account[id]=1312313",
        "account[_links][self]=" + quote("https://test.kommo.com"),
    ]
).encode()
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    app = create_app(settings, background=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as c:
            yield c, app


async def setup(app: FastAPI, events: str) -> tuple[Database, str, str]:
    db: Database = state_of(app).running().database
    added = await subscribers.add(
        db, "http://receiver.test/h", account_key="default", event_list=events
    )
    async with db.read() as conn:
        account = await store.get_account(conn, "default")
    assert account is not None
    return db, added.subscriber.id, f"/webhooks/amocrm/default/{account.inbound_secret}"


async def test_a_captured_post_becomes_one_json_event_per_item(
    gateway: tuple[httpx.AsyncClient, FastAPI],
) -> None:
    client, app = gateway
    db, subscriber, path = await setup(app, "status_lead,add_contact,add_company,note_lead")
    answer = await client.post(path, content=CAPTURED, headers=FORM)
    assert answer.status_code == 200
    assert answer.json() == {
        "success": True,
        "message": "Webhook received",
        "data": {"events": 5, "duplicate": False},
    }
    async with db.read() as conn:
        stored = list(reversed(await store.recent_events(conn, limit=10)))
        queued = await queue.list_deliveries(conn)
    # The body's keys in order of first appearance (leads, then contacts), items in order.
    assert [(e.code, e.entity, e.action) for e in stored] == [
        ("status_lead", "lead", "status"),
        ("status_lead", "lead", "status"),
        ("note_lead", "lead", "note"),
        ("add_contact", "contact", "add"),
        ("add_company", "company", "add"),
    ]
    moved = stored[0]
    assert moved.data["id"] == "15318175"
    assert moved.data["old_status_id"] == "67548607"
    assert moved.data["status_id"] == "67548619"
    assert moved.data["custom_fields"][0]["values"] == [{"value": "2", "enum": "908107"}]
    assert moved.data["custom_fields"][1]["values"] == ["1729717200"]
    assert moved.occurred_at.timestamp() == 1726572758
    assert stored[1].data["id"] == "15318176"
    assert stored[2].data["note"]["text"] == "Mijoz qo‘ng‘iroq qildi ✓"
    assert stored[3].data["name"] == "Дилноза Каримова"
    assert stored[3].data["custom_fields"][0]["values"][0]["value"] == "+998 90 111 22 33"
    assert stored[4].data["name"] == "O‘zbek Savdo MChJ"
    assert len(queued) == 5
    assert {d.subscriber_id for d in queued} == {subscriber}


async def test_an_identical_repeat_is_answered_200_and_stored_once(
    gateway: tuple[httpx.AsyncClient, FastAPI],
) -> None:
    client, app = gateway
    db, _, path = await setup(app, "status_lead")
    first = await client.post(path, content=CAPTURED, headers=FORM)
    again = await client.post(path, content=CAPTURED, headers=FORM)
    assert first.json()["data"] == {"events": 5, "duplicate": False}
    assert again.status_code == 200
    assert again.json()["data"] == {"events": 0, "duplicate": True}
    async with db.read() as conn:
        assert len(await store.recent_events(conn, limit=50)) == 5
        assert len(await queue.list_deliveries(conn)) == 2


@pytest.mark.parametrize(
    "path",
    [
        "/webhooks/amocrm/default/wrong-secret-wrong-secret-wrong!",
        "/webhooks/amocrm/nobody/wrong-secret",
        "/webhooks/amocrm/NOT_A_NAME/x",
    ],
)
async def test_a_wrong_secret_or_unknown_account_is_404_and_stores_nothing(
    gateway: tuple[httpx.AsyncClient, FastAPI], path: str
) -> None:
    client, app = gateway
    db, _, real_path = await setup(app, "status_lead")
    answer = await client.post(path, content=CAPTURED, headers=FORM)
    assert answer.status_code == 404
    assert answer.json() == {
        "success": False,
        "error": "Endpoint not found: /webhooks/amocrm/{account}/{secret}",
    }
    assert real_path.rsplit("/", 1)[1] not in answer.text
    async with db.read() as conn:
        assert await store.post_count(conn) == 0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty body"),
        (b"leads[add][0]", "not a form body"),
        (b"leads=1", "must hold actions"),
        ("leads[add][0][name]=\udcff".encode("utf-8", "surrogatepass"), "not UTF-8"),
    ],
)
async def test_a_body_amocrm_would_never_send_is_400_and_stores_nothing(
    gateway: tuple[httpx.AsyncClient, FastAPI], body: bytes, reason: str
) -> None:
    client, app = gateway
    db, _, path = await setup(app, "status_lead")
    answer = await client.post(path, content=body, headers=FORM)
    assert answer.status_code == 400
    assert answer.json()["error"] == "Invalid webhook body"
    assert reason in answer.json()["details"]["body"]
    async with db.read() as conn:
        assert await store.post_count(conn) == 0
