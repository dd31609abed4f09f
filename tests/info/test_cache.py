"""InfoCache on its own: TTL, single-flight, stale copies and error mapping (fake source)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from amogate.amocrm.errors import (
    AmoBlockedError,
    AmoPaymentError,
    AmoPermanentError,
    AmoRateLimitedError,
    AmoTimeoutError,
    AmoUnavailableError,
)
from amogate.connection.tokens import NeedsReauthorization, NotConnected
from amogate.errors import NotFound, ServiceUnavailable, UpstreamError, UpstreamTimeout
from amogate.failures import classify
from amogate.info.cache import PIPELINE_MISS_REFRESH_SECONDS, InfoCache, etag_of
from tests.info.fakes import FakeClock, FakeSource

TTL = 300.0
REFRESH_INTERVAL = 10.0  # the default minimum between forced refreshes of one kind


def account_data() -> dict[str, Any]:
    return {
        "account": {"id": 1, "name": "Acme", "subdomain": "acme", "timezone": "Asia/Tashkent"},
        "pipelines": [
            {"id": 10, "name": "Sales", "_embedded": {"statuses": [{"id": 100}]}},
            {"id": 20, "name": "Support", "_embedded": {"statuses": [{"id": 200}]}},
        ],
        "lead_fields": [{"id": n, "name": f"Field {n}"} for n in range(1, 65)],
        "contact_fields": [{"id": 900, "code": "PHONE"}, {"id": 901, "code": "EMAIL"}],
    }


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def source() -> FakeSource:
    return FakeSource(account_data())


@pytest.fixture
def cache(source: FakeSource, clock: FakeClock) -> InfoCache:
    return InfoCache(source, ttl=TTL, clock=clock)


async def test_repeated_reads_within_ttl_fetch_once(cache: InfoCache, source: FakeSource) -> None:
    first = await cache.entry("lead_fields")
    for _ in range(50):
        again = await cache.entry("lead_fields")
        assert again.cached
        assert not again.stale
        assert again.etag == first.etag
    assert not first.cached
    assert source.calls == ["lead_fields"]


async def test_read_after_ttl_fetches_again(
    cache: InfoCache, source: FakeSource, clock: FakeClock
) -> None:
    await cache.pipelines()
    clock.advance(TTL - 1)
    await cache.pipelines()
    assert source.calls == ["pipelines"]
    clock.advance(2)
    await cache.pipelines()
    assert source.calls == ["pipelines", "pipelines"]


async def test_force_refresh_fetches_exactly_once(
    cache: InfoCache, source: FakeSource, clock: FakeClock
) -> None:
    await cache.account()
    clock.advance(REFRESH_INTERVAL)
    await cache.account(force_refresh=True)
    await cache.account()
    assert source.calls == ["account", "account"]


async def test_forced_refreshes_reach_amocrm_at_most_once_per_interval(
    cache: InfoCache, source: FakeSource, clock: FakeClock
) -> None:
    await cache.account()
    for _ in range(5):  # right after a fetch: the copy is fresh enough
        assert (await cache.entry("account", force_refresh=True)).cached
    clock.advance(REFRESH_INTERVAL + 1)
    assert not (await cache.entry("account", force_refresh=True)).cached
    clock.advance(REFRESH_INTERVAL / 2)
    assert (await cache.entry("account", force_refresh=True)).cached
    clock.advance(REFRESH_INTERVAL / 2)
    assert not (await cache.entry("account", force_refresh=True)).cached
    assert source.calls == ["account"] * 3


async def test_failed_forced_refreshes_count_against_the_interval_too(
    cache: InfoCache, source: FakeSource, clock: FakeClock
) -> None:
    await cache.account()
    clock.advance(REFRESH_INTERVAL + 1)
    source.failure = AmoUnavailableError("down", status=503)
    assert (await cache.entry("account", force_refresh=True)).stale
    for _ in range(5):
        assert (await cache.entry("account", force_refresh=True)).cached
    assert source.calls == ["account", "account"]


async def test_the_interval_is_per_kind(
    cache: InfoCache, source: FakeSource, clock: FakeClock
) -> None:
    await cache.account()
    await cache.pipelines()
    clock.advance(REFRESH_INTERVAL)
    await cache.account(force_refresh=True)
    await cache.pipelines(force_refresh=True)
    assert source.calls == ["account", "pipelines", "account", "pipelines"]


async def test_concurrent_cold_reads_share_one_fetch(cache: InfoCache, source: FakeSource) -> None:
    source.gate = asyncio.Event()
    readers = [asyncio.create_task(cache.lead_fields()) for _ in range(20)]
    await asyncio.sleep(0)
    source.gate.set()
    results = await asyncio.gather(*readers)
    assert source.calls == ["lead_fields"]
    assert all(len(fields) == 64 for fields in results)


async def test_concurrent_forced_refreshes_share_one_fetch(
    cache: InfoCache, source: FakeSource, clock: FakeClock
) -> None:
    await cache.contact_fields()
    clock.advance(REFRESH_INTERVAL)
    source.gate = asyncio.Event()
    readers = [asyncio.create_task(cache.contact_fields(force_refresh=True)) for _ in range(10)]
    await asyncio.sleep(0)
    source.gate.set()
    await asyncio.gather(*readers)
    assert source.calls == ["contact_fields", "contact_fields"]


async def test_a_reader_that_gives_up_does_not_cancel_the_shared_fetch(
    cache: InfoCache, source: FakeSource
) -> None:
    source.gate = asyncio.Event()
    impatient = asyncio.create_task(cache.pipelines())
    patient = asyncio.create_task(cache.pipelines())
    await asyncio.sleep(0)
    impatient.cancel()
    source.gate.set()
    assert [p["id"] for p in await patient] == [10, 20]
    assert source.calls == ["pipelines"]


async def test_stale_copy_is_served_when_amocrm_is_unavailable(
    cache: InfoCache, source: FakeSource, clock: FakeClock
) -> None:
    fresh = await cache.entry("lead_fields")
    clock.advance(TTL + 42)
    source.failure = AmoUnavailableError("down", status=503)
    stale = await cache.entry("lead_fields")
    assert stale.stale
    assert stale.value == fresh.value
    assert stale.etag == fresh.etag
    assert stale.age_seconds == pytest.approx(TTL + 42)


@pytest.mark.parametrize(
    "failure",
    [
        AmoRateLimitedError("slow down", status=429, retry_after=5),
        AmoTimeoutError("timed out"),
        AmoBlockedError("blocked", status=403, blocked_for=600),
    ],
)
async def test_forced_refresh_falls_back_to_the_copy_on_transient_failures(
    cache: InfoCache, source: FakeSource, clock: FakeClock, failure: Exception
) -> None:
    await cache.account()
    clock.advance(REFRESH_INTERVAL)
    source.failure = failure  # type: ignore[assignment]
    entry = await cache.entry("account", force_refresh=True)
    assert entry.stale
    assert entry.value["name"] == "Acme"


async def test_permanent_failures_are_not_hidden_behind_a_stale_copy(
    cache: InfoCache, source: FakeSource, clock: FakeClock
) -> None:
    await cache.account()
    clock.advance(REFRESH_INTERVAL)
    source.failure = AmoPaymentError("Payment required", status=402)
    with pytest.raises(UpstreamError) as caught:
        await cache.account(force_refresh=True)
    assert caught.value.message == "amoCRM returned an error"


@pytest.mark.parametrize(
    ("failure", "error_type", "message", "retry_after"),
    [
        (AmoUnavailableError("refused"), ServiceUnavailable, "amoCRM is unavailable", None),
        (
            AmoRateLimitedError("429", status=429, retry_after=7),
            ServiceUnavailable,
            "amoCRM rate limit reached",
            7,
        ),
        (
            AmoRateLimitedError("429", status=429),
            ServiceUnavailable,
            "amoCRM rate limit reached",
            2.0,
        ),
        (AmoTimeoutError("slow"), UpstreamTimeout, "amoCRM did not answer in time", None),
        (
            AmoBlockedError("403", status=403, blocked_for=600),
            ServiceUnavailable,
            "amoCRM is unavailable",
            600,
        ),
        (AmoPermanentError("bad", status=400), UpstreamError, "amoCRM returned an error", None),
        (
            NotConnected("amoCRM is not connected: open /oauth/authorize"),
            ServiceUnavailable,
            "amoCRM is not connected: open /oauth/authorize to connect it",
            None,
        ),
        (
            NeedsReauthorization("amoCRM needs reauthorization: open /oauth/authorize (revoked)"),
            ServiceUnavailable,
            "amoCRM needs reauthorization: open /oauth/authorize to reconnect it",
            None,
        ),
    ],
)
async def test_without_a_copy_failures_become_clear_gateway_errors(
    cache: InfoCache,
    source: FakeSource,
    failure: Exception,
    error_type: type[Exception],
    message: str,
    retry_after: float | None,
) -> None:
    source.failure = failure  # type: ignore[assignment]
    with pytest.raises(error_type) as caught:
        await cache.lead_fields()
    error = caught.value
    assert isinstance(error, ServiceUnavailable | UpstreamTimeout | UpstreamError)
    assert error.message == message
    assert error.retry_after == retry_after


async def test_a_failed_fetch_is_retried_by_the_next_read(
    cache: InfoCache, source: FakeSource
) -> None:
    source.failure = AmoUnavailableError("down")
    with pytest.raises(ServiceUnavailable):
        await cache.pipelines()
    source.failure = None
    assert len(await cache.pipelines()) == 2
    assert source.calls == ["pipelines", "pipelines"]


async def test_pipeline_is_found_by_id_and_unknown_ids_are_not_found(
    cache: InfoCache, source: FakeSource
) -> None:
    support = await cache.pipeline(20)
    assert support["name"] == "Support"
    with pytest.raises(NotFound) as caught:
        await cache.pipeline(999)
    assert caught.value.message == "Pipeline not found: 999"
    assert source.calls == ["pipelines"]


async def test_an_id_missing_from_an_older_copy_is_looked_up_once_before_404(
    cache: InfoCache, source: FakeSource, clock: FakeClock
) -> None:
    await cache.pipelines()
    clock.advance(PIPELINE_MISS_REFRESH_SECONDS)
    source.data["pipelines"] = [*source.data["pipelines"], {"id": 30, "name": "New"}]
    created = await cache.pipeline(30)  # created in amoCRM after the copy was taken
    assert created["name"] == "New"
    assert source.calls == ["pipelines", "pipelines"]
    # Unknown ids right after a fetch answer from the copy: no call per unknown id.
    for unknown in (31, 32, 33):
        with pytest.raises(NotFound):
            await cache.pipeline(unknown)
    assert source.calls == ["pipelines", "pipelines"]
    clock.advance(PIPELINE_MISS_REFRESH_SECONDS)
    with pytest.raises(NotFound):
        await cache.pipeline(31)
    assert source.calls == ["pipelines"] * 3


async def test_concurrent_misses_share_one_lookup(
    cache: InfoCache, source: FakeSource, clock: FakeClock
) -> None:
    await cache.pipelines()
    clock.advance(PIPELINE_MISS_REFRESH_SECONDS)
    source.gate = asyncio.Event()
    waiting = [asyncio.create_task(cache.pipeline(999)) for _ in range(20)]
    await asyncio.sleep(0)
    source.gate.set()
    outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(o, NotFound) for o in outcomes)
    assert source.calls == ["pipelines", "pipelines"]


async def test_a_lookup_amocrm_cannot_answer_is_unavailable_not_404(
    cache: InfoCache, source: FakeSource, clock: FakeClock
) -> None:
    await cache.pipelines()
    clock.advance(PIPELINE_MISS_REFRESH_SECONDS)
    source.failure = AmoUnavailableError("down", status=503)
    with pytest.raises(ServiceUnavailable):
        await cache.pipeline(30)
    assert (await cache.pipeline(20))["name"] == "Support"  # known ids still come from the copy


async def test_callers_cannot_corrupt_the_cached_copy(cache: InfoCache) -> None:
    fields = await cache.lead_fields()
    fields.clear()
    account = await cache.account()
    account["name"] = "changed"
    assert len(await cache.lead_fields()) == 64
    assert (await cache.account())["name"] == "Acme"


async def test_etag_follows_the_data(
    cache: InfoCache, source: FakeSource, clock: FakeClock
) -> None:
    before = await cache.entry("contact_fields")
    assert before.etag == etag_of(account_data()["contact_fields"])
    source.data["contact_fields"] = [{"id": 900, "code": "PHONE"}]
    clock.advance(REFRESH_INTERVAL)
    after = await cache.entry("contact_fields", force_refresh=True)
    assert after.etag != before.etag
    assert after.etag.startswith('"')
    assert after.etag.endswith('"')


async def test_invalidate_forgets_the_copy(cache: InfoCache, source: FakeSource) -> None:
    await cache.account()
    assert cache.peek("account") is not None
    cache.invalidate()
    assert cache.peek("account") is None
    await cache.account()
    assert source.calls == ["account", "account"]


async def test_the_failure_behind_a_public_error_is_the_one_classification(
    cache: InfoCache, source: FakeSource
) -> None:
    # The worker reschedules by this classification; it never re-reads the message.
    source.failure = NeedsReauthorization("amoCRM is not connected, whatever this text says")
    with pytest.raises(ServiceUnavailable) as caught:
        await cache.lead_fields()
    assert caught.value.upstream == classify(source.failure)
    assert caught.value.upstream is not None
    assert (caught.value.upstream.kind, caught.value.upstream.outcome) == ("reauthorize", "auth")
