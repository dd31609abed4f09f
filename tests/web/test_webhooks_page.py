"""The admin page's webhooks section: subscribers (never their secrets), amoCRM's view of the
webhook, recent events, failed deliveries with Retry; signed-in only, CSRF-checked, in three
languages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI

from amogate.app_state import state_of
from amogate.relay import subscribers
from amogate.storage import relay as store
from amogate.storage import relay_queue as queue
from amogate.storage.db import Database
from tests.web.helpers import form_token


async def one_failed(app: FastAPI) -> tuple[str, str]:
    """A subscriber and one of its deliveries that has failed; (secret, delivery id)."""
    db: Database = state_of(app).running().database
    added = await subscribers.add(
        db, "https://shop.example.uz/hook", account_key="default", event_list="status_lead"
    )
    now = datetime.now(UTC)
    async with db.transaction() as conn:
        await store.offer_events(
            conn,
            "default",
            [store.NewEvent("status_lead", "lead", "status", now, {"id": "4242"})],
            now=now,
        )
        (due,) = await queue.claim_due(
            conn, owner="w", now=now, lease_until=now + timedelta(seconds=60), limit=5
        )
        await queue.mark_attempt_failed(
            conn,
            due.delivery.id,
            owner="w",
            now=now,
            retry_at=None,
            status=503,
            error="gave up after 9 attempts; last: HTTP 503",
        )
    return added.secret, due.delivery.id


async def test_the_section_shows_subscribers_events_and_failed_deliveries(
    signed_in: httpx.AsyncClient, admin_app: FastAPI
) -> None:
    secret, delivery_id = await one_failed(admin_app)
    page = await signed_in.get("/admin/webhooks")
    assert page.status_code == 200
    html = page.text
    assert "https://shop.example.uz/hook" in html
    assert "status_lead" in html
    assert "4242" in html
    assert delivery_id in html
    assert "gave up after 9 attempts; last: HTTP 503" in html
    assert secret not in html
    assert "whsec_" not in html
    assert 'href="/admin/webhooks"' in (await signed_in.get("/admin")).text


async def test_retry_queues_a_failed_delivery_again(
    signed_in: httpx.AsyncClient, admin_app: FastAPI
) -> None:
    _, delivery_id = await one_failed(admin_app)
    token = await form_token(signed_in, "/admin/webhooks")
    refused = await signed_in.post(f"/admin/webhooks/deliveries/{delivery_id}/retry")
    assert refused.status_code in (400, 403)
    done = await signed_in.post(
        f"/admin/webhooks/deliveries/{delivery_id}/retry", data={"csrf": token}
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/admin/webhooks?done=requeued&count=1"
    db: Database = state_of(admin_app).running().database
    async with db.read() as conn:
        assert await queue.list_deliveries(conn, status=queue.FAILED) == []
    shown = await signed_in.get(done.headers["location"] + "&lang=ru")
    assert "Снова в очереди: 1." in shown.text
    assert "Недоставленных событий нет." in shown.text


async def test_the_section_needs_a_session(admin_client: httpx.AsyncClient) -> None:
    page = await admin_client.get("/admin/webhooks", follow_redirects=False)
    assert page.status_code in (302, 303, 401)
    posted = await admin_client.post("/admin/webhooks/retry-failed", follow_redirects=False)
    assert posted.status_code in (302, 303, 401, 403)


async def test_the_section_speaks_uzbek(signed_in: httpx.AsyncClient) -> None:
    page = await signed_in.get("/admin/webhooks?lang=uz")
    assert "amoCRM hodisalari" in page.text
    assert "Hali obunachilar yo'q." in page.text or "Hali obunachilar yo&#39;q." in page.text
