"""/metrics after real traffic, and /health/ready's 200 and 503 answers with reasons."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, update

from amogate.amocrm.errors import AmoRateLimitedError
from amogate.app_state import state_of
from amogate.settings import Settings
from amogate.storage import accounts
from amogate.storage.db import Database
from amogate.storage.tables import amo_accounts, deliveries
from tests.ops.support import instances, issue_key, migrated
from tests.support.gateway import connected_gateway


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text format, None if absent."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if match is None or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if found == labels:
            return float(match.group(3))
    return None


async def add_delivery(db: Database, status: str, created_at: datetime) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            insert(deliveries).values(
                id=uuid.uuid4().hex,
                status=status,
                step="form",
                payload={},
                lead_name="Order",
                contact_name="Ali",
                attempts=0,
                created_at=created_at,
                updated_at=created_at,
                next_attempt_at=created_at,
                give_up_at=created_at + timedelta(hours=72),
            )
        )


async def test_metrics_show_requests_amocrm_calls_deliveries_and_the_token_after_traffic(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    now = datetime.now(UTC)
    async with connected_gateway(settings) as h:
        db = state_of(h.app).running().database
        await add_delivery(db, "queued", now - timedelta(minutes=5))
        await add_delivery(db, "retrying", now - timedelta(minutes=1))
        await add_delivery(db, "delivered", now - timedelta(hours=1))
        account = await h.gateway.get("/api/v1/info/account", headers=api_headers)
        await h.gateway.get("/api/v1/info/pipelines/424242", headers=api_headers)
        await h.gateway.get("/api/v1/diagnostics/config", headers={"X-API-KEY": "wrong-key"})
        await h.fault("429", 60, path_prefix="/api/v4/leads/pipelines")
        client = await h.amo.client()
        with pytest.raises(AmoRateLimitedError):
            await client.list_pipelines()
        await h.clear_faults()
        row = await h.amo.account_state()
        scrape = await h.gateway.get("/metrics", headers=api_headers)
    assert account.status_code == 200
    assert row is not None
    assert row.access_expires_at is not None
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain")
    text = scrape.text
    assert (
        sample(
            text,
            "amogate_http_requests_total",
            route="/api/v1/info/account",
            method="GET",
            status="200",
        )
        == 1
    )
    # the template, never the raw path with its id
    assert (
        sample(
            text,
            "amogate_http_requests_total",
            route="/api/v1/info/pipelines/{id}",
            method="GET",
            status="404",
        )
        == 1
    )
    assert "424242" not in text
    assert (
        sample(
            text,
            "amogate_http_requests_total",
            route="/api/v1/diagnostics/config",
            method="GET",
            status="401",
        )
        == 1
    )
    assert (
        sample(
            text,
            "amogate_http_request_duration_seconds_count",
            route="/api/v1/info/account",
            method="GET",
        )
        == 1
    )
    assert (
        sample(
            text,
            "amogate_amocrm_requests_total",
            account="default",
            endpoint="/api/v4/account",
            status="200",
        )
        or 0
    ) >= 1
    assert (
        sample(
            text,
            "amogate_amocrm_requests_total",
            account="default",
            endpoint="/api/v4/leads/pipelines",
            status="429",
        )
        or 0
    ) >= 1
    assert (sample(text, "amogate_amocrm_rate_limited_total", account="default") or 0) >= 1
    assert sample(text, "amogate_amocrm_blocked_total", account="default") == 0
    assert sample(text, "amogate_deliveries", state="queued") == 1
    assert sample(text, "amogate_deliveries", state="retrying") == 1
    assert sample(text, "amogate_deliveries", state="delivered") == 1
    assert sample(text, "amogate_deliveries", state="failed") == 0
    assert sample(text, "amogate_queue_depth") == 2
    assert sample(text, "amogate_account_queue_depth", account="default") == 2
    age = sample(text, "amogate_oldest_undelivered_lead_age_seconds")
    assert age is not None
    assert 299 <= age < 400
    assert (
        sample(text, "amogate_amocrm_token_expiry_timestamp_seconds", account="default")
        == row.access_expires_at.timestamp()
    )
    assert (
        sample(text, "amogate_amocrm_connection_state", account="default", state="connected") == 1
    )
    assert (
        sample(
            text,
            "amogate_amocrm_connection_state",
            account="default",
            state="needs_reauthorization",
        )
        == 0
    )


async def test_two_apps_in_one_process_keep_separate_metrics(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with instances(settings, 2) as (first, second):
        await first.get("/health")
        await first.get("/health")
        text = (await second.get("/metrics", headers=api_headers)).text
    assert (
        sample(text, "amogate_http_requests_total", route="/health", method="GET", status="200")
        is None
    )


async def test_metrics_need_a_key_with_the_admin_scope_by_default(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    await migrated(settings.database_url)
    reader, _ = await issue_key(settings.database_url, "reader", ["info:read"])
    async with instances(settings, 1) as (gateway,):
        anonymous = await gateway.get("/metrics")
        scoped = await gateway.get("/metrics", headers={"X-API-KEY": reader})
        scoped_bearer = await gateway.get("/metrics", headers={"Authorization": f"Bearer {reader}"})
        admin = await gateway.get("/metrics", headers=api_headers)
        bearer = await gateway.get(
            "/metrics", headers={"Authorization": f"Bearer {api_headers['X-API-KEY']}"}
        )
        basic = await gateway.get(
            "/metrics", headers={"Authorization": f"Basic {api_headers['X-API-KEY']}"}
        )
    assert anonymous.status_code == 401
    assert (scoped.status_code, scoped.json()["error"]) == (403, "API key lacks scope admin")
    assert scoped_bearer.status_code == 403
    assert admin.status_code == 200
    assert bearer.status_code == 200
    assert basic.status_code == 401
    assert "amogate_queue_depth" in admin.text


async def test_metrics_public_needs_no_key(settings_factory: Callable[..., Settings]) -> None:
    async with instances(settings_factory(metrics_public=True), 1) as (gateway,):
        response = await gateway.get("/metrics")
    assert response.status_code == 200
    assert "amogate_queue_depth" in response.text


async def test_scrapes_read_the_database_at_most_every_few_seconds(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings) as h:
        await add_delivery(state_of(h.app).running().database, "queued", datetime.now(UTC))
        scrapes = [await h.gateway.get("/metrics", headers=api_headers) for _ in range(20)]
        collected = state_of(h.app).metrics
    assert {s.status_code for s in scrapes} == {200}
    assert collected.snapshot_reads == 1
    assert all(sample(s.text, "amogate_queue_depth") == 1 for s in scrapes)


async def test_ready_is_200_when_database_token_and_queue_are_fine(settings: Settings) -> None:
    async with connected_gateway(settings) as h:
        await add_delivery(state_of(h.app).running().database, "queued", datetime.now(UTC))
        response = await h.gateway.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "message": "Gateway is ready",
        "data": {"database": "ok", "amocrm": "ok", "queue": "ok"},
    }


async def test_ready_is_503_with_the_reasons_when_the_queue_is_stuck_and_reauth_is_needed(
    settings: Settings,
) -> None:
    async with connected_gateway(settings, ready_max_queue_age=600) as h:
        db = state_of(h.app).running().database
        await add_delivery(db, "retrying", datetime.now(UTC) - timedelta(minutes=20))
        async with db.transaction() as conn:
            await conn.execute(update(amo_accounts).values(state=accounts.NEEDS_REAUTHORIZATION))
        response = await h.gateway.get("/health/ready")
        cheap = await h.gateway.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "Gateway is not ready"
    assert body["details"]["amocrm"] == "amoCRM needs reauthorization: open /oauth/authorize"
    assert body["details"]["queue"].startswith("the oldest undelivered lead is 1")
    assert body["details"]["queue"].endswith("s old (limit 600 s)")
    assert cheap.status_code == 200


async def test_ready_is_503_when_never_connected_or_the_long_lived_token_expired(
    settings: Settings,
) -> None:
    async with connected_gateway(settings, connect_account=False) as h:
        never = await h.gateway.get("/health/ready")
    async with connected_gateway(settings) as h:
        async with state_of(h.app).running().database.transaction() as conn:
            await conn.execute(
                update(amo_accounts).values(
                    token_kind=accounts.LONG_LIVED,
                    refresh_token=None,
                    access_expires_at=datetime.now(UTC) - timedelta(hours=1),
                )
            )
        expired = await h.gateway.get("/health/ready")
    assert never.status_code == 503
    assert never.json()["details"] == {"amocrm": "amoCRM is not connected: open /oauth/authorize"}
    assert expired.status_code == 503
    assert expired.json()["details"]["amocrm"].startswith("the long-lived token expired at ")


async def test_ready_is_503_when_the_database_does_not_answer(settings: Settings) -> None:
    async with connected_gateway(settings) as h:
        working = state_of(h.app).running().database
        state_of(h.app).running().database = Database("postgresql://nobody@127.0.0.1:1/none")
        try:
            response = await h.gateway.get("/health/ready")
        finally:
            await state_of(h.app).running().database.dispose()
            state_of(h.app).running().database = working
    assert response.status_code == 503
    assert response.json()["details"]["database"].startswith("the database does not answer")
