"""The /api/v1/info endpoints against the amoCRM sandbox, over HTTP."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from amogate.info.cache import InfoCache
from amogate.info.source import AmoInfoSource
from amogate.settings import Settings
from tests.info.fakes import FakeClock
from tests.support.gateway import Harness, connected_gateway, running_info

REFRESH_INTERVAL = 10.0  # INFO_REFRESH_MIN_INTERVAL's default
TTL = 300.0
FIELDS_PATH = "/api/v4/leads/custom_fields"
PIPELINES_PATH = "/api/v4/leads/pipelines"
INFO_PATHS = [
    "/api/v1/info/pipelines",
    "/api/v1/info/pipelines/1",
    "/api/v1/info/lead-fields",
    "/api/v1/info/contact-fields",
    "/api/v1/info/account",
    "/api/v1/info/users",
]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def h(settings: Settings, clock: FakeClock) -> AsyncIterator[Harness]:
    async with connected_gateway(settings, info_cache_ttl=TTL) as harness:
        cache = info_cache(harness)
        cache.clock = clock
        source = cache.source
        assert isinstance(source, AmoInfoSource)
        # A hung amoCRM is given up on quickly, so the timeout tests do not wait 10 s.
        source.timeout = httpx.Timeout(0.3)
        yield harness


def info_cache(h: Harness) -> InfoCache:
    cache = running_info(h.app)
    assert isinstance(cache, InfoCache)
    return cache


async def sandbox_pages(h: Harness, path: str, key: str) -> tuple[list[dict[str, Any]], int]:
    """Everything the sandbox's own API lists at `path`, following `_links.next`; and the
    number of pages it took."""
    items: list[dict[str, Any]] = []
    url: str | None = path
    pages = 0
    while url is not None:
        response = await h.sandbox_api("GET", url)
        if response.status_code == 204:
            break
        body = response.json()
        pages += 1
        items.extend(body["_embedded"][key])
        url = body.get("_links", {}).get("next", {}).get("href")
    return items, pages


async def get(h: Harness, path: str, headers: dict[str, str], **params: str) -> httpx.Response:
    return await h.gateway.get(path, headers=headers, params=params)


# --- completeness ----------------------------------------------------------------------------


async def test_lead_fields_returns_every_field_across_all_pages(
    h: Harness, api_headers: dict[str, str]
) -> None:
    expected, sandbox_page_count = await sandbox_pages(h, FIELDS_PATH, "custom_fields")
    assert len(expected) > 60
    assert sandbox_page_count > 1

    response = await get(h, "/api/v1/info/lead-fields", api_headers)
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Lead fields retrieved successfully"
    fields = body["data"]["_embedded"]["custom_fields"]
    assert [f["id"] for f in fields] == [f["id"] for f in expected]
    assert {"UTM_SOURCE", "UTM_MEDIUM", "UTM_CAMPAIGN"} <= {f.get("code") for f in fields}


async def test_lead_fields_follow_amocrm_pages_when_one_page_is_not_enough(
    h: Harness, api_headers: dict[str, str]
) -> None:
    # The gateway asks for amoCRM's largest page (250); an account with more fields than
    # that makes it follow `_links.next`.
    extra = [{"name": f"Extra {n}", "type": "text"} for n in range(200)]
    created = await h.sandbox_api("POST", FIELDS_PATH, json=extra)
    assert created.status_code == 200
    expected, _ = await sandbox_pages(h, FIELDS_PATH, "custom_fields")
    assert len(expected) > 250
    before = len(await h.requests(FIELDS_PATH))

    response = await get(h, "/api/v1/info/lead-fields", api_headers)

    fields = response.json()["data"]["_embedded"]["custom_fields"]
    assert len(fields) == len(expected)
    assert {f["id"] for f in fields} == {f["id"] for f in expected}
    calls = (await h.requests(FIELDS_PATH))[before:]
    assert len(calls) > 1
    assert any("page=2" in call["query"] for call in calls)


async def test_contact_fields_return_every_contact_field(
    h: Harness, api_headers: dict[str, str]
) -> None:
    expected, _ = await sandbox_pages(h, "/api/v4/contacts/custom_fields", "custom_fields")
    response = await get(h, "/api/v1/info/contact-fields", api_headers)
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Contact fields retrieved successfully"
    fields = body["data"]["_embedded"]["custom_fields"]
    assert [f["id"] for f in fields] == [f["id"] for f in expected]
    assert {"PHONE", "EMAIL"} <= {f.get("code") for f in fields}


async def test_users_are_every_user_as_id_name_and_email_and_are_cached(
    h: Harness, api_headers: dict[str, str]
) -> None:
    expected, _ = await sandbox_pages(h, "/api/v4/users", "users")
    first = await get(h, "/api/v1/info/users", api_headers)
    again = await get(h, "/api/v1/info/users", api_headers)
    assert first.status_code == 200
    assert first.json()["message"] == "Users retrieved successfully"
    users = first.json()["data"]["_embedded"]["users"]
    assert users == [{"id": u["id"], "name": u["name"], "email": u["email"]} for u in expected]
    assert len(users) > 1
    assert again.json()["data"] == first.json()["data"]
    assert again.headers["X-Cache"] == "HIT"
    assert len(await h.requests("/api/v4/users")) == 2  # the test's own read, then one fetch


async def test_pipelines_come_with_their_statuses(h: Harness, api_headers: dict[str, str]) -> None:
    expected, _ = await sandbox_pages(h, PIPELINES_PATH, "pipelines")
    response = await get(h, "/api/v1/info/pipelines", api_headers)
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Pipelines retrieved successfully"
    pipelines = body["data"]["_embedded"]["pipelines"]
    assert pipelines == expected
    assert len(pipelines) >= 2
    for pipeline in pipelines:
        assert pipeline["_embedded"]["statuses"]


async def test_one_pipeline_by_id(h: Harness, api_headers: dict[str, str]) -> None:
    expected, _ = await sandbox_pages(h, PIPELINES_PATH, "pipelines")
    wanted = expected[-1]
    response = await get(h, f"/api/v1/info/pipelines/{wanted['id']}", api_headers)
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Pipeline retrieved successfully"
    assert body["data"] == wanted


async def test_a_pipeline_created_after_the_list_was_cached_is_found(
    h: Harness, api_headers: dict[str, str], clock: FakeClock
) -> None:
    await get(h, "/api/v1/info/pipelines", api_headers)
    clock.advance(60)  # a minute later an admin adds a pipeline in amoCRM
    state = h.sandbox_app.state.sandbox
    created = copy.deepcopy(state.seed.pipelines[-1])
    created.update(id=7_100_777, name="Yangi voronka", is_main=False)
    state.seed.pipelines.append(created)
    found = await get(h, "/api/v1/info/pipelines/7100777", api_headers)
    assert found.status_code == 200, found.text
    assert found.json()["data"]["name"] == "Yangi voronka"
    assert len(await h.requests(PIPELINES_PATH)) == 2
    # an id amoCRM does not have either: 404, and no call while the copy is this fresh
    for _ in range(5):
        missing = await get(h, "/api/v1/info/pipelines/424242", api_headers)
        assert missing.status_code == 404
        assert missing.json()["error"] == "Pipeline not found: 424242"
    assert len(await h.requests(PIPELINES_PATH)) == 2


async def test_account_has_id_name_subdomain_currency_and_timezone(
    h: Harness, api_headers: dict[str, str]
) -> None:
    upstream = (await h.sandbox_api("GET", "/api/v4/account?with=datetime_settings")).json()
    response = await get(h, "/api/v1/info/account", api_headers)
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Account info retrieved successfully"
    account = body["data"]
    for key in ("id", "name", "subdomain", "currency"):
        assert account[key] == upstream[key]
    assert account["timezone"] == upstream["_embedded"]["datetime_settings"]["timezone"]
    assert account["timezone"]
    assert account["_embedded"]["datetime_settings"] == upstream["_embedded"]["datetime_settings"]


# --- caching ---------------------------------------------------------------------------------


async def test_repeated_reads_within_the_ttl_do_not_call_amocrm(
    h: Harness, api_headers: dict[str, str], clock: FakeClock
) -> None:
    first = await get(h, "/api/v1/info/lead-fields", api_headers)
    assert first.headers["X-Cache"] == "MISS"
    upstream = len(await h.requests(FIELDS_PATH))
    for _ in range(50):
        clock.advance(TTL / 100)
        again = await get(h, "/api/v1/info/lead-fields", api_headers)
        assert again.status_code == 200
        assert again.headers["X-Cache"] == "HIT"
        assert again.content == first.content
    assert len(await h.requests(FIELDS_PATH)) == upstream


async def test_reads_after_the_ttl_fetch_again(
    h: Harness, api_headers: dict[str, str], clock: FakeClock
) -> None:
    await get(h, "/api/v1/info/pipelines", api_headers)
    clock.advance(TTL - 1)
    await get(h, "/api/v1/info/pipelines", api_headers)
    assert len(await h.requests(PIPELINES_PATH)) == 1
    clock.advance(2)
    response = await get(h, "/api/v1/info/pipelines", api_headers)
    assert response.headers["X-Cache"] == "MISS"
    assert len(await h.requests(PIPELINES_PATH)) == 2


async def test_refresh_true_fetches_exactly_once(
    h: Harness, api_headers: dict[str, str], clock: FakeClock
) -> None:
    await get(h, "/api/v1/info/pipelines", api_headers)
    before = len(await h.requests(PIPELINES_PATH))
    clock.advance(REFRESH_INTERVAL)
    refreshed = await get(h, "/api/v1/info/pipelines", api_headers, refresh="true")
    assert refreshed.status_code == 200
    assert refreshed.headers["X-Cache"] == "MISS"
    await get(h, "/api/v1/info/pipelines", api_headers)
    assert len(await h.requests(PIPELINES_PATH)) == before + 1


async def test_refresh_shows_a_field_added_in_amocrm(
    h: Harness, api_headers: dict[str, str], clock: FakeClock
) -> None:
    first = await get(h, "/api/v1/info/lead-fields", api_headers)
    await h.sandbox_api("POST", FIELDS_PATH, json=[{"name": "Filial", "type": "text"}])
    cached = await get(h, "/api/v1/info/lead-fields", api_headers)
    clock.advance(REFRESH_INTERVAL)
    refreshed = await get(h, "/api/v1/info/lead-fields", api_headers, refresh="true")
    names = [f["name"] for f in refreshed.json()["data"]["_embedded"]["custom_fields"]]
    assert cached.content == first.content
    assert "Filial" in names


async def test_refresh_true_in_a_loop_reaches_amocrm_once_per_interval(
    h: Harness, api_headers: dict[str, str], clock: FakeClock
) -> None:
    await get(h, "/api/v1/info/pipelines", api_headers)
    before = len(await h.requests(PIPELINES_PATH))
    answers = [
        await get(h, "/api/v1/info/pipelines", api_headers, refresh="true") for _ in range(20)
    ]
    assert {a.headers["X-Cache"] for a in answers} == {"HIT"}
    assert len(await h.requests(PIPELINES_PATH)) == before
    clock.advance(REFRESH_INTERVAL)
    answers = [
        await get(h, "/api/v1/info/pipelines", api_headers, refresh="true") for _ in range(20)
    ]
    assert [a.headers["X-Cache"] for a in answers].count("MISS") == 1
    assert len(await h.requests(PIPELINES_PATH)) == before + 1


async def test_twenty_concurrent_cold_reads_make_one_upstream_call(
    h: Harness, api_headers: dict[str, str]
) -> None:
    responses = await asyncio.gather(
        *(get(h, "/api/v1/info/pipelines", api_headers) for _ in range(20))
    )
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert len(await h.requests(PIPELINES_PATH)) == 1


# --- amoCRM failing --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["500", "down", "timeout", "429", "403"])
async def test_a_stale_copy_is_served_while_amocrm_fails(
    h: Harness, api_headers: dict[str, str], clock: FakeClock, mode: str
) -> None:
    fresh = await get(h, "/api/v1/info/lead-fields", api_headers)
    clock.advance(TTL + 60)
    await h.fault(mode, 60, path_prefix=FIELDS_PATH)
    try:
        response = await get(h, "/api/v1/info/lead-fields", api_headers)
    finally:
        await h.clear_faults()
    assert response.status_code == 200
    body = response.json()
    assert body["stale"] is True
    assert body["age_seconds"] == int(TTL + 60)
    assert body["data"] == fresh.json()["data"]
    assert response.headers["X-Cache"] == "STALE"
    assert response.headers["ETag"] == "W/" + fresh.headers["ETag"]
    faulted = [r for r in await h.requests(FIELDS_PATH) if r["fault"] == mode]
    assert faulted


async def test_refresh_during_an_outage_serves_the_copy(
    h: Harness, api_headers: dict[str, str], clock: FakeClock
) -> None:
    await get(h, "/api/v1/info/account", api_headers)
    clock.advance(REFRESH_INTERVAL)
    await h.fault("500", 60, path_prefix="/api/v4/account")
    response = await get(h, "/api/v1/info/account", api_headers, refresh="true")
    await h.clear_faults()
    assert response.status_code == 200
    assert response.json()["stale"] is True
    assert response.json()["data"]["subdomain"]


@pytest.mark.parametrize(
    ("mode", "status", "message"),
    [
        ("down", 503, "amoCRM is unavailable"),
        ("500", 503, "amoCRM is unavailable"),
        ("403", 503, "amoCRM is unavailable"),
        ("timeout", 504, "amoCRM did not answer in time"),
        ("429", 503, "amoCRM rate limit reached"),
    ],
)
async def test_without_a_copy_failures_get_a_clear_answer(
    h: Harness, api_headers: dict[str, str], mode: str, status: int, message: str
) -> None:
    await h.fault(mode, 60, path_prefix=FIELDS_PATH)
    try:
        response = await get(h, "/api/v1/info/lead-fields", api_headers)
    finally:
        await h.clear_faults()
    assert response.status_code == status
    body = response.json()
    assert body["success"] is False
    assert body["error"] == message
    assert set(body) <= {"success", "error", "details"}
    for leaked in (
        "Errno",
        "Connection refused",
        "ReadTimeout",
        "ConnectError",
        "timed out",
        "<html",
        "Internal Server Error",
    ):
        assert leaked not in response.text
    if mode in ("429", "403"):
        assert int(response.headers["Retry-After"]) > 0


async def test_rate_limited_answer_carries_amocrms_retry_after(
    h: Harness, api_headers: dict[str, str]
) -> None:
    await h.fault("429", 30, path_prefix=PIPELINES_PATH)
    response = await get(h, "/api/v1/info/pipelines", api_headers)
    await h.clear_faults()
    assert response.status_code == 503
    assert response.json()["error"] == "amoCRM rate limit reached"
    assert 1 <= int(response.headers["Retry-After"]) <= 30


async def test_a_read_succeeds_again_once_amocrm_recovers(
    h: Harness, api_headers: dict[str, str]
) -> None:
    await h.fault("down", 60, path_prefix=PIPELINES_PATH)
    failed = await get(h, "/api/v1/info/pipelines", api_headers)
    await h.clear_faults()
    recovered = await get(h, "/api/v1/info/pipelines", api_headers)
    assert failed.status_code == 503
    assert recovered.status_code == 200
    assert "stale" not in recovered.json()


async def test_not_connected_tells_to_open_oauth_authorize(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, connect_account=False) as h:
        response = await get(h, "/api/v1/info/pipelines", api_headers)
        assert await h.requests("/api/v4") == []
    assert response.status_code == 503
    assert "/oauth/authorize" in response.json()["error"]


async def test_not_configured_says_what_to_set(
    client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    response = await client.get("/api/v1/info/account", headers=api_headers)
    assert response.status_code == 503
    assert "AMO_DOMAIN" in response.json()["error"]


# --- pipeline ids ----------------------------------------------------------------------------


async def test_unknown_pipeline_is_404(h: Harness, api_headers: dict[str, str]) -> None:
    response = await get(h, "/api/v1/info/pipelines/999999", api_headers)
    assert response.status_code == 404
    assert response.json() == {"success": False, "error": "Pipeline not found: 999999"}


@pytest.mark.parametrize("bad_id", ["abc", "12x", "0", "-5"])
async def test_non_numeric_pipeline_id_is_422(
    h: Harness, api_headers: dict[str, str], bad_id: str
) -> None:
    response = await get(h, f"/api/v1/info/pipelines/{bad_id}", api_headers)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "Validation failed"
    assert "id" in body["details"]
    assert await h.requests(PIPELINES_PATH) == []


# --- conditional requests --------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/v1/info/pipelines", "/api/v1/info/lead-fields", "/api/v1/info/account"]
)
async def test_matching_if_none_match_gets_304_with_no_body(
    h: Harness, api_headers: dict[str, str], path: str
) -> None:
    first = await get(h, path, api_headers)
    etag = first.headers["ETag"]
    assert etag.startswith('"')
    again = await h.gateway.get(path, headers={**api_headers, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["ETag"] == etag
    other = await h.gateway.get(path, headers={**api_headers, "If-None-Match": '"nope"'})
    assert other.status_code == 200
    assert other.content == first.content


async def test_etag_changes_when_the_data_changes(
    h: Harness, api_headers: dict[str, str], clock: FakeClock
) -> None:
    first = await get(h, "/api/v1/info/lead-fields", api_headers)
    await h.sandbox_api("POST", FIELDS_PATH, json=[{"name": "Manba", "type": "text"}])
    clock.advance(REFRESH_INTERVAL)
    changed = await h.gateway.get(
        "/api/v1/info/lead-fields",
        headers={**api_headers, "If-None-Match": first.headers["ETag"]},
        params={"refresh": "true"},
    )
    assert changed.status_code == 200
    assert changed.headers["ETag"] != first.headers["ETag"]


async def test_each_pipeline_has_its_own_etag(h: Harness, api_headers: dict[str, str]) -> None:
    listed = (await get(h, "/api/v1/info/pipelines", api_headers)).json()
    ids = [p["id"] for p in listed["data"]["_embedded"]["pipelines"]]
    tags = {(await get(h, f"/api/v1/info/pipelines/{i}", api_headers)).headers["ETag"] for i in ids}
    assert len(tags) == len(ids)


# --- access and documentation ----------------------------------------------------------------


@pytest.mark.parametrize("path", INFO_PATHS)
async def test_info_needs_an_api_key(h: Harness, path: str) -> None:
    missing = await h.gateway.get(path)
    wrong = await h.gateway.get(path, headers={"X-API-KEY": "wrong-key-0123456789"})
    for response in (missing, wrong):
        assert response.status_code == 401
        assert response.json()["error"] == "Invalid or missing API key"
    assert await h.requests("/api/v4/leads") == []


async def test_info_endpoints_are_documented_in_openapi(h: Harness) -> None:
    schema = (await h.gateway.get("/openapi.json")).json()
    for path in (
        "/api/v1/info/pipelines",
        "/api/v1/info/pipelines/{id}",
        "/api/v1/info/lead-fields",
        "/api/v1/info/contact-fields",
        "/api/v1/info/account",
        "/api/v1/info/users",
    ):
        operation = schema["paths"][path]["get"]
        assert operation["summary"]
        assert "304" in operation["responses"]
    parameters = schema["paths"]["/api/v1/info/pipelines/{id}"]["get"]["parameters"]
    assert {p["name"]: p["schema"]["type"] for p in parameters} == {
        "id": "integer",
        "refresh": "boolean",
    }
