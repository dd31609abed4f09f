"""Issued API keys: scopes, origins, shared per-minute limits, revocation, last use."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import pytest

from amogate.settings import Settings
from amogate.storage import rate_counters
from amogate.storage.db import Database
from tests.ops.support import (
    FakeClock,
    instances,
    issue_key,
    key_row,
    migrated,
    revoke_key,
)

# 30 s into a minute, so a test's requests never straddle a window boundary.
MID_WINDOW = 1_800_000_030.0
CONFIG = "/api/v1/diagnostics/config"
LEAD = {"lead": {"name": "Order"}, "contact": {"name": "Ali", "phone": "+998901234567"}}


async def test_a_key_is_refused_with_403_naming_the_scope_its_route_needs(
    settings: Settings,
) -> None:
    await migrated(settings.database_url)
    key, _ = await issue_key(settings.database_url, "reader", ["info:read"])
    async with instances(settings, 1) as (gateway,):
        lead = await gateway.post("/api/v1/leads/unsorted", json=LEAD, headers={"X-API-KEY": key})
        config = await gateway.get(CONFIG, headers={"X-API-KEY": key})
    assert (lead.status_code, lead.json()["error"]) == (403, "API key lacks scope leads:write")
    assert (config.status_code, config.json()["error"]) == (403, "API key lacks scope admin")


async def test_every_api_v1_route_refuses_a_key_without_its_scope(settings: Settings) -> None:
    await migrated(settings.database_url)
    key, _ = await issue_key(settings.database_url, "nothing", [])
    expected = {
        "/api/v1/leads/deliveries": "deliveries:read",
        "/api/v1/deliveries": "deliveries:read",
        "/api/v1/leads": "leads:write",
        "/api/v1/info": "info:read",
        "/api/v1/diagnostics": "admin",
    }
    # Public form posts need no key by design (SPEC §8); an unknown form id is a 404.
    public = ("/api/v1/forms/",)
    async with instances(settings, 1) as (gateway,):
        paths = (await gateway.get("/openapi.json")).json()["paths"]
        api_routes = [
            (template, method)
            for template, operations in paths.items()
            if template.startswith("/api/v1/")
            for method in operations
        ]
        assert api_routes, "no /api/v1 routes found"
        for template, method in api_routes:
            scope = next(
                (s for prefix, s in expected.items() if template.startswith(prefix + "/")), "admin"
            )
            path = re.sub(r"\{[^}]+\}", "1", template)
            response = await gateway.request(
                method.upper(), path, headers={"X-API-KEY": key}, json={}
            )
            if template.startswith(public):
                assert response.status_code == 404, f"{method.upper()} {template}"
                continue
            assert (response.status_code, response.json()["error"]) == (
                403,
                f"API key lacks scope {scope}",
            ), f"{method.upper()} {template}"


async def test_a_browser_request_from_an_origin_not_on_the_keys_list_is_refused(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(cors_allowed_origins="https://global.uz")
    await migrated(settings.database_url)
    key, _ = await issue_key(settings.database_url, "site", ["admin"], origins=["https://site.uz"])
    plain, _ = await issue_key(settings.database_url, "server", ["admin"])
    async with instances(settings, 1) as (gateway,):
        own = await gateway.get(CONFIG, headers={"X-API-KEY": key, "Origin": "https://site.uz"})
        foreign = await gateway.get(
            CONFIG, headers={"X-API-KEY": key, "Origin": "https://global.uz"}
        )
        server_side = await gateway.get(CONFIG, headers={"X-API-KEY": key})
        plain_global = await gateway.get(
            CONFIG, headers={"X-API-KEY": plain, "Origin": "https://global.uz"}
        )
        plain_other = await gateway.get(
            CONFIG, headers={"X-API-KEY": plain, "Origin": "https://evil.example"}
        )
    assert own.status_code == 200
    assert own.headers["access-control-allow-origin"] == "https://site.uz"
    assert (foreign.status_code, foreign.json()["error"]) == (
        403,
        "Origin not allowed for this API key",
    )
    assert server_side.status_code == 200
    assert plain_global.status_code == 200
    assert plain_other.status_code == 403


async def test_preflight_is_allowed_for_the_origins_of_active_keys_only(
    settings: Settings,
) -> None:
    await migrated(settings.database_url)
    await issue_key(settings.database_url, "site", ["leads:write"], origins=["https://site.uz"])
    await issue_key(settings.database_url, "old", ["leads:write"], origins=["https://old.uz"])
    await revoke_key(settings.database_url, "old")

    def preflight(origin: str) -> dict[str, str]:
        return {
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-api-key,content-type",
        }

    async with instances(settings, 1) as (gateway,):
        site = await gateway.options("/api/v1/leads/unsorted", headers=preflight("https://site.uz"))
        old = await gateway.options("/api/v1/leads/unsorted", headers=preflight("https://old.uz"))
    assert site.status_code == 200
    assert site.headers["access-control-allow-origin"] == "https://site.uz"
    assert old.status_code == 400
    assert "access-control-allow-origin" not in old.headers


async def test_the_per_key_limit_holds_across_two_instances_sharing_a_database(
    settings_factory: Callable[..., Settings], database_url: str
) -> None:
    settings = settings_factory(database_url=database_url)
    await migrated(database_url)
    key, _ = await issue_key(database_url, "bot", ["admin"], rate_per_minute=3)
    other, _ = await issue_key(database_url, "other", ["admin"], rate_per_minute=3)
    clock = FakeClock(MID_WINDOW)
    headers = {"X-API-KEY": key}
    async with instances(settings, 2, clock=clock) as (first, second):
        answers = [
            await first.get(CONFIG, headers=headers),
            await second.get(CONFIG, headers=headers),
            await first.get(CONFIG, headers=headers),
        ]
        limited = await second.get(CONFIG, headers=headers)
        unaffected = await first.get(CONFIG, headers={"X-API-KEY": other})
        clock.now += 30  # the next minute
        next_window = await second.get(CONFIG, headers=headers)
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert (limited.status_code, limited.json()["error"]) == (429, "Rate limit exceeded")
    assert limited.headers["retry-after"] == "30"
    assert unaffected.status_code == 200
    assert next_window.status_code == 200


async def test_concurrent_hits_on_one_counter_are_each_counted_once(database_url: str) -> None:
    await migrated(database_url)
    db = Database(database_url)

    async def hit() -> int:
        async with db.transaction() as conn:
            return await rate_counters.hit(conn, "api_key:x", 1_800_000_000)

    try:
        counts = await asyncio.gather(*(hit() for _ in range(12)))
    finally:
        await db.dispose()
    assert sorted(counts) == list(range(1, 13))


async def test_revocation_is_seen_at_once_by_every_instance(
    settings_factory: Callable[..., Settings], database_url: str
) -> None:
    settings = settings_factory(database_url=database_url)
    await migrated(database_url)
    key, key_id = await issue_key(database_url, "site", ["admin"])
    headers = {"X-API-KEY": key}
    async with instances(settings, 2) as (first, second):
        before = [(await c.get(CONFIG, headers=headers)).status_code for c in (first, second)]
        await revoke_key(database_url, key_id)
        after = [await c.get(CONFIG, headers=headers) for c in (first, second)]
    assert before == [200, 200]
    assert [a.status_code for a in after] == [401, 401]
    assert after[0].json()["error"] == "Invalid or missing API key"


async def test_last_use_is_recorded_at_most_once_a_minute(settings: Settings) -> None:
    await migrated(settings.database_url)
    key, _ = await issue_key(settings.database_url, "site", ["admin"])
    clock = FakeClock(MID_WINDOW)
    headers = {"X-API-KEY": key}
    async with instances(settings, 1, clock=clock) as (gateway,):
        await gateway.get(CONFIG, headers=headers)
        first_use = (await key_row(settings.database_url, "site")).last_used_at
        clock.now += 30
        await gateway.get(CONFIG, headers=headers)
        within_minute = (await key_row(settings.database_url, "site")).last_used_at
        clock.now += 31
        await gateway.get(CONFIG, headers=headers)
        after_minute = (await key_row(settings.database_url, "site")).last_used_at
    assert first_use is not None
    assert first_use.timestamp() == pytest.approx(MID_WINDOW)
    assert within_minute == first_use
    assert after_minute is not None
    assert after_minute.timestamp() == pytest.approx(MID_WINDOW + 61)


async def test_a_wrong_key_and_a_missing_key_get_the_original_401(settings: Settings) -> None:
    async with instances(settings, 1) as (gateway,):
        wrong = await gateway.get(CONFIG, headers={"X-API-KEY": "amg_" + "x" * 32})
        missing = await gateway.get(CONFIG)
    for response in (wrong, missing):
        assert response.status_code == 401
        assert response.json() == {
            "success": False,
            "error": "Invalid or missing API key",
            "message": "Please provide valid X-API-KEY header",
        }


async def test_the_admin_key_passes_every_scope(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with instances(settings, 1) as (gateway,):
        response = await gateway.get(CONFIG, headers=api_headers)
    assert response.status_code == 200
