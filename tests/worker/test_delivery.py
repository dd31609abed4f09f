"""The worker against the sandbox: batches, per-item rejections, reconciliation, idempotency."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from amogate.amocrm.errors import AmoPermanentError, FieldError, ItemValidationErrors
from amogate.app_state import state_of
from amogate.leads import mapping
from amogate.leads.fields import account_fields
from amogate.settings import Settings
from amogate.storage import deliveries as store
from amogate.worker.deliver import Deliverer, utcnow
from amogate.worker.worker import deliverer_from
from tests.leads.helpers import (
    URL,
    all_leads,
    api_json,
    delivery,
    lead_fields,
    lead_notes,
    simple_lead,
    unsorted_items,
    wait_until_settled,
)
from tests.ops.support import issue_key, migrated
from tests.support.gateway import Harness, connected_gateway

QUEUE_ONLY: dict[str, Any] = {"lead_sync_timeout": 0, "delivery_retry_base_seconds": 0.2}


def deliverer(h: Harness, **overrides: Any) -> Deliverer:
    worker = deliverer_from(
        state_of(h.app).settings, state_of(h.app).running().database, h.amo, h.info, None
    )
    for key, value in overrides.items():
        setattr(worker, key, value)
    return worker


async def queue(h: Harness, bodies: list[dict[str, Any]], headers: dict[str, str]) -> list[str]:
    ids = []
    for body in bodies:
        response = await h.gateway.post(URL, json=body, headers=headers)
        assert response.status_code == 202, response.text
        assert response.json()["message"] == "Lead accepted and queued for delivery"
        assert response.json()["data"]["status"] == "queued"
        ids.append(response.json()["data"]["delivery_id"])
    return ids


async def stats(h: Harness) -> dict[str, Any]:
    response = await h.sandbox.get("/_sandbox/stats")
    body: dict[str, Any] = response.json()
    return body


async def test_queued_leads_go_out_in_one_batch_with_their_notes(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, **QUEUE_ONLY) as h:
        ids = await queue(h, [simple_lead(n) for n in range(1, 8)], api_headers)
        assert await deliverer(h).run_once() == 7
        counts = (await stats(h))["by_endpoint"]
        assert counts["POST /api/v4/leads/unsorted/forms"] == 1
        assert counts["POST /api/v4/leads/notes"] == 1
        for delivery_id in ids:
            record = await delivery(h, delivery_id, api_headers)
            assert record["status"] == "delivered"
            assert record["amocrm"]["lead_id"] is not None
            assert record["amocrm"]["note_id"] is not None
            assert [(a["step"], a["outcome"]) for a in record["attempts"]] == [
                ("form", "ok"),
                ("note", "ok"),
            ]
        assert len(await unsorted_items(h)) == 7


async def test_a_refused_value_in_a_batch_holds_back_no_lead_and_only_its_lead_loses_it(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, **QUEUE_ONLY) as h:
        select = next(f for f in await lead_fields(h) if f["type"] == "select")
        bad = simple_lead(2)
        # an option id that no longer exists (the gateway passes ids through unchecked)
        bad["lead"]["custom_fields"] = [{"field_id": select["id"], "enum_id": 1}]
        bad["lead"]["price"] = 700
        ids = await queue(h, [simple_lead(1), bad, simple_lead(3)], api_headers)
        await deliverer(h).run_once()
        records = [await delivery(h, i, api_headers) for i in ids]
        assert [r["status"] for r in records] == ["delivered"] * 3
        assert [len(r["warnings"]) for r in records] == [0, 1, 0]
        assert records[1]["warnings"][0]["field"] == "lead.custom_fields.0"
        assert "NotSupportedChoice" in records[1]["warnings"][0]["problem"]
        assert records[1]["error_details"] is None
        forms = await h.requests("/api/v4/leads/unsorted/forms")
        assert [r["status"] for r in forms] == [400, 200]
        assert len(forms[1]["body"]) == 3  # the valid leads went out with the repaired one
        lead = await api_json(h, f"/api/v4/leads/{records[1]['amocrm']['lead_id']}")
        assert lead["price"] == 700
        assert not lead["custom_fields_values"]
        assert len(await unsorted_items(h)) == 3


async def test_a_lead_refused_as_a_whole_fails_alone(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, **QUEUE_ONLY) as h:
        ids = await queue(h, [simple_lead(1), simple_lead(2)], api_headers)
        # The first request is refused naming no item: each lead is tried alone, and the
        # first of those is refused again (count 2), so that lead fails and the other goes.
        await h.fault("400", count=2, path_prefix="/api/v4/leads/unsorted/forms")
        await deliverer(h).run_once()
        records = [await delivery(h, i, api_headers) for i in ids]
        assert sorted(r["status"] for r in records) == ["delivered", "failed"]
        failed = next(r for r in records if r["status"] == "failed")
        assert failed["next_attempt_at"] is None
        assert failed["error_details"] == {
            "fields": {"request": "amoCRM rejected the request (HTTP 400)"}
        }
        assert len(await unsorted_items(h)) == 1


async def test_a_lead_is_delivered_after_amocrm_recovers_and_every_attempt_is_recorded(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, **QUEUE_ONLY) as h:
        [delivery_id] = await queue(h, [simple_lead(1)], api_headers)
        await h.fault("500", 60, path_prefix="/api/v4/leads/unsorted")
        worker = deliverer(h)
        await worker.run_once()
        record = await delivery(h, delivery_id, api_headers)
        assert record["status"] == "retrying"
        assert record["next_attempt_at"] is not None
        assert [(a["outcome"], a["http_status"]) for a in record["attempts"]] == [
            ("transient", 500)
        ]
        await h.clear_faults()
        worker.clock = lambda: utcnow() + timedelta(seconds=5)
        await worker.run_once()
        record = await delivery(h, delivery_id, api_headers)
        assert record["status"] == "delivered"
        # a 500 may hide a created lead, so amoCRM is asked before the form goes again
        assert [(a["step"], a["outcome"]) for a in record["attempts"]] == [
            ("form", "transient"),
            ("reconcile", "not_found"),
            ("form", "ok"),
            ("note", "ok"),
        ]
        assert record["attempts_count"] == 2


async def test_a_form_sent_before_a_crash_is_found_and_not_sent_again(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, **QUEUE_ONLY) as h:
        [delivery_id] = await queue(h, [simple_lead(1)], api_headers)
        # A worker claims the lead, sends it, and dies before it can record the answer.
        database = state_of(h.app).running().database
        now = utcnow()
        async with database.transaction() as conn:
            [row] = await store.claim_due(
                conn, owner="crashed", now=now, lease_until=now + timedelta(seconds=60), limit=5
            )
            await store.mark_sending_form(conn, [row.id], owner="crashed", now=now)
        fields = await account_fields(h.info)
        item = mapping.form_item(
            row.payload, fields, delivery_id=row.id, created_at=int(row.created_at.timestamp())
        ).item
        client = await h.amo.client()
        [sent] = await client.create_unsorted_forms([item])

        later = deliverer(h, clock=lambda: utcnow() + timedelta(seconds=61))
        assert await later.run_once() == 1
        record = await delivery(h, delivery_id, api_headers)
        assert record["status"] == "delivered"
        assert record["amocrm"]["uid"] == sent.uid
        assert record["amocrm"]["lead_id"] == sent.lead_id
        assert [(a["step"], a["outcome"]) for a in record["attempts"]] == [
            ("reconcile", "ok"),
            ("note", "ok"),
        ]
        assert len(await h.requests("/api/v4/leads/unsorted/forms")) == 1
        assert (await stats(h))["unsorted_duplicate_source_uids"] == 0
        assert len(await all_leads(h)) == 1


async def test_an_unknown_outcome_with_nothing_in_amocrm_is_sent_again(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, **QUEUE_ONLY) as h:
        [delivery_id] = await queue(h, [simple_lead(1)], api_headers)
        now = utcnow()
        async with state_of(h.app).running().database.transaction() as conn:
            [row] = await store.claim_due(
                conn, owner="crashed", now=now, lease_until=now + timedelta(seconds=60), limit=5
            )
            await store.mark_sending_form(conn, [row.id], owner="crashed", now=now)
        await deliverer(h, clock=lambda: utcnow() + timedelta(seconds=61)).run_once()
        record = await delivery(h, delivery_id, api_headers)
        assert record["status"] == "delivered"
        assert [(a["step"], a["outcome"]) for a in record["attempts"]][:2] == [
            ("reconcile", "not_found"),
            ("form", "ok"),
        ]
        assert len(await unsorted_items(h)) == 1


async def test_without_authorization_leads_wait_without_burning_attempts(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, connect_account=False, **QUEUE_ONLY) as h:
        [delivery_id] = await queue(h, [simple_lead(1)], api_headers)
        await deliverer(h).run_once()
        record = await delivery(h, delivery_id, api_headers)
        assert record["status"] == "retrying"
        assert record["attempts_count"] == 0
        assert record["attempts"][-1]["outcome"] == "auth"
        assert await unsorted_items_count(h) == 0


async def test_a_403_waits_for_the_cool_down_without_spending_an_attempt(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, **QUEUE_ONLY) as h:
        [delivery_id] = await queue(h, [simple_lead(1)], api_headers)
        await h.fault("403", 60, path_prefix="/api/v4/leads/unsorted")
        worker = deliverer(h)
        assert await worker.run_once() == 1

        record = await delivery(h, delivery_id, api_headers)
        budget = await h.amo.limiter.state()
        assert budget is not None
        assert budget.total_403 == 1
        cool_down_ends = datetime.fromtimestamp(budget.blocked_until, UTC)
        next_attempt = datetime.fromisoformat(record["next_attempt_at"])
        assert record["status"] == "retrying"
        assert record["attempts_count"] == 0  # a 403 is the account's problem, not the lead's
        assert [(a["step"], a["outcome"], a["http_status"]) for a in record["attempts"]] == [
            ("form", "blocked", 403)
        ]
        assert next_attempt >= cool_down_ends > utcnow() + timedelta(seconds=500)
        # Until then no worker takes the lead again, whatever its clock says about backoff.
        worker.clock = lambda: next_attempt - timedelta(seconds=1)
        assert await worker.run_once() == 0
        assert len(await h.requests("/api/v4/leads/unsorted")) == 1


async def unsorted_items_count(h: Harness) -> int:
    return int((await stats(h))["entities"]["unsorted"])


async def test_the_same_idempotency_key_replays_the_first_answer(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, background=True, lead_sync_timeout=5) as h:
        headers = {**api_headers, "Idempotency-Key": "order-42"}
        first = await h.gateway.post(URL, json=simple_lead(1), headers=headers)
        again = await h.gateway.post(URL, json=simple_lead(1), headers=headers)
        assert first.status_code == again.status_code == 200
        assert again.json() == first.json()
        assert again.headers["Idempotency-Replayed"] == "true"
        assert "Idempotency-Replayed" not in first.headers
        other = await h.gateway.post(URL, json=simple_lead(2), headers=headers)
        assert other.status_code == 409
        assert other.json() == {
            "success": False,
            "error": "Idempotency-Key was already used with a different request",
            "details": {"Idempotency-Key": "Use a new key for a different request"},
        }
        # One delivery row (delivered once its note follows): nothing else can reach amoCRM.
        settled = await wait_until_settled(
            h.gateway, [first.json()["data"]["delivery_id"]], headers
        )
        assert list(settled.values()) == [store.DELIVERED]
        async with state_of(h.app).running().database.read() as conn:
            assert len(await store.list_deliveries(conn)) == 1
        assert len(await unsorted_items(h)) == 1
        assert len(await all_leads(h)) == 1


async def test_the_answer_comes_when_the_lead_exists_in_amocrm_and_its_note_follows(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, background=True, lead_sync_timeout=10) as h:
        # amoCRM takes 3 s to answer notes: the caller must not wait for the note.
        await h.fault("slow", 60, path_prefix="/api/v4/leads/notes", delay_s=3.0)
        started = time.monotonic()
        response = await h.gateway.post(URL, json=simple_lead(1), headers=api_headers)
        waited = time.monotonic() - started
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert data["status"] == "delivered"
        [item] = await unsorted_items(h)
        assert (data["uid"], data["lead_id"]) == (item["uid"], item["_embedded"]["leads"][0]["id"])
        assert waited < 3.0
        no_note_yet = await api_json(h, f"/api/v4/leads/{data['lead_id']}/notes")
        assert not (no_note_yet.get("_embedded") or {}).get("notes")
        # The note still arrives, and the delivery is complete with it.
        [note] = await lead_notes(h, data["lead_id"])
        assert "comment 1" in note["params"]["text"]
        settled = await wait_until_settled(h.gateway, [data["delivery_id"]], api_headers)
        assert settled == {data["delivery_id"]: store.DELIVERED}
        record = await delivery(h, data["delivery_id"], api_headers)
        assert record["amocrm"]["note_id"] == note["id"]


async def test_a_repeat_gets_the_first_answer_even_after_the_lead_was_delivered(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    # No worker runs while the first request waits, so it is answered "queued".
    async with connected_gateway(settings, lead_sync_timeout=0.5) as h:
        headers = {**api_headers, "Idempotency-Key": "order-9"}
        first = await h.gateway.post(URL, json=simple_lead(1), headers=headers)
        assert first.status_code == 202
        assert await deliverer(h).run_once() == 1

        again = await h.gateway.post(URL, json=simple_lead(1), headers=headers)
        assert (again.status_code, again.json()) == (202, first.json())
        assert again.headers["Idempotency-Replayed"] == "true"


async def test_a_repeat_while_the_first_request_still_waits_answers_from_the_same_delivery(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, background=True, lead_sync_timeout=10) as h:
        await h.fault("slow", 30, path_prefix="/api/v4/leads/unsorted", delay_s=1.0)
        headers = {**api_headers, "Idempotency-Key": "order-7"}
        first = asyncio.create_task(h.gateway.post(URL, json=simple_lead(1), headers=headers))
        database = state_of(h.app).running().database
        for _ in range(200):  # until the first request's lead is stored (it is now waiting)
            async with database.read() as conn:
                if await store.list_deliveries(conn):
                    break
            await asyncio.sleep(0.02)
        assert not first.done()

        again = await h.gateway.post(URL, json=simple_lead(1), headers=headers)
        first_answer = await first

        assert (first_answer.status_code, again.status_code) == (200, 200)
        assert again.json() == first_answer.json()
        assert again.json()["data"]["status"] == "delivered"
        assert again.headers["Idempotency-Replayed"] == "true"
        assert len(await unsorted_items(h)) == 1


async def test_concurrent_repeats_of_one_idempotency_key_make_one_delivery(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, **QUEUE_ONLY) as h:
        headers = {**api_headers, "Idempotency-Key": "same"}
        first = await h.gateway.post(URL, json=simple_lead(1), headers=headers)
        concurrent = await asyncio.gather(
            *(h.gateway.post(URL, json=simple_lead(1), headers=headers) for _ in range(5))
        )
        ids = {r.json()["data"]["delivery_id"] for r in [first, *concurrent]}
        assert len(ids) == 1
        async with state_of(h.app).running().database.read() as conn:
            assert len(await store.list_deliveries(conn)) == 1


@pytest.mark.parametrize("same_body", [False, True], ids=["different bodies", "same body"])
async def test_idempotency_keys_are_scoped_to_the_api_key(
    settings: Settings, same_body: bool
) -> None:
    """Two sites (two API keys) that happen to pick the same Idempotency-Key each get their
    own lead: one site's key never answers 409 to, or swallows, another site's lead."""
    await migrated(settings.database_url)
    shop, _ = await issue_key(settings.database_url, "shop", ["leads:write", "deliveries:read"])
    blog, _ = await issue_key(settings.database_url, "blog", ["leads:write", "deliveries:read"])
    async with connected_gateway(settings, background=True, lead_sync_timeout=5) as h:
        answers = [
            await h.gateway.post(
                URL,
                json=simple_lead(1 if same_body else n),
                headers={"X-API-KEY": key, "Idempotency-Key": "order-1"},
            )
            for n, key in enumerate([shop, blog], start=1)
        ]

        assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
        assert ["Idempotency-Replayed" in a.headers for a in answers] == [False, False]
        lead_ids = {a.json()["data"]["lead_id"] for a in answers}
        assert len(lead_ids) == 2
        assert {lead["id"] for lead in await all_leads(h)} == lead_ids


async def test_an_unknown_delivery_is_404(settings: Settings, api_headers: dict[str, str]) -> None:
    async with connected_gateway(settings, **QUEUE_ONLY) as h:
        response = await h.gateway.get("/api/v1/leads/deliveries/nope", headers=api_headers)
        assert response.status_code == 404
        assert response.json()["success"] is False


class RefusingAmo:
    """An amoCRM that refuses the price of every form it is sent, however often (a fake for
    the one case the sandbox cannot show: a lead refused again after the resend)."""

    def __init__(self) -> None:
        self.sent: list[list[dict[str, Any]]] = []

    async def create_unsorted_forms(self, items: list[dict[str, Any]]) -> list[Any]:
        self.sent.append(items)
        errors = [
            ItemValidationErrors(
                str(item["request_id"]),
                [FieldError("InvalidType", "_embedded.leads.0.price", "Bad price.")],
            )
            for item in items
        ]
        raise AmoPermanentError("Request validation failed", status=400, validation_errors=errors)


async def test_a_lead_refused_again_after_the_resend_fails_instead_of_looping(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, **QUEUE_ONLY) as h:
        body = simple_lead(1)
        body["lead"]["price"] = 500
        [delivery_id] = await queue(h, [body], api_headers)
        worker = deliverer(h, contacts=None)  # this fake amoCRM only takes forms
        amo = RefusingAmo()

        async def refusing_client() -> Any:
            return amo

        worker.client = refusing_client  # type: ignore[method-assign]
        await asyncio.wait_for(worker.run_once(), 30)
        record = await delivery(h, delivery_id, api_headers)
        assert len(amo.sent) == 2  # the lead, then once without its price
        assert "price" in amo.sent[0][0]["_embedded"]["leads"][0]
        assert "price" not in amo.sent[1][0]["_embedded"]["leads"][0]
        assert record["status"] == "failed"
        assert [a["outcome"] for a in record["attempts"]] == ["values_refused", "permanent"]
