from __future__ import annotations

import asyncio

import pytest

from amogate.amocrm.errors import AmoBlockedError, AmoRateLimitedError
from amogate.amocrm.ratelimit import NoLimiter, TokenBucketLimiter
from tests.amocrm.helpers import FakeTime


def limiter(
    time: FakeTime,
    rate: float = 7,
    *,
    max_wait_s: float | None = None,
    block_cooldown_s: float = 600.0,
) -> TokenBucketLimiter:
    return TokenBucketLimiter(
        rate,
        clock=time.clock,
        sleep=time.sleep,
        max_wait_s=max_wait_s,
        block_cooldown_s=block_cooldown_s,
    )


async def acquire_times(lim: TokenBucketLimiter, time: FakeTime, count: int) -> list[float]:
    times = []
    for _ in range(count):
        await lim.acquire()
        times.append(time.now)
    return times


def most_in_any_second(times: list[float]) -> int:
    return max(sum(1 for t in times if start <= t < start + 1 - 1e-9) for start in times)


async def test_at_most_rate_acquires_in_any_second() -> None:
    time = FakeTime()
    lim = limiter(time, rate=7)

    times = await acquire_times(lim, time, 30)

    assert most_in_any_second(times) == 7
    assert times[-1] - times[0] == pytest.approx(29 / 7)


async def test_a_burst_allows_that_many_at_once_then_the_rate() -> None:
    time = FakeTime()
    lim = TokenBucketLimiter(5, burst=5, clock=time.clock, sleep=time.sleep)

    times = await acquire_times(lim, time, 10)

    assert times[:5] == [times[0]] * 5
    assert times[9] - times[0] == pytest.approx(1.0)


async def test_concurrent_callers_share_the_same_budget() -> None:
    time = FakeTime()
    lim = limiter(time, rate=4)
    times: list[float] = []

    async def one() -> None:
        await lim.acquire()
        times.append(time.now)

    await asyncio.gather(*(one() for _ in range(12)))

    assert most_in_any_second(sorted(times)) == 4


async def test_a_429_without_retry_after_pauses_everyone_for_two_seconds() -> None:
    time = FakeTime()
    lim = limiter(time)
    await lim.acquire()

    await lim.report_rate_limited(None)
    reported = time.now
    await lim.acquire()

    assert time.now - reported == pytest.approx(2.0)


async def test_consecutive_429s_double_the_pause_up_to_sixty_seconds() -> None:
    time = FakeTime()
    lim = limiter(time)
    pauses = []
    for _ in range(8):
        await lim.report_rate_limited(None)
        reported = time.now
        await lim.acquire()
        pauses.append(round(time.now - reported, 6))

    assert pauses == [2, 4, 8, 16, 32, 60, 60, 60]


async def test_a_429_long_after_the_last_pause_starts_a_new_streak() -> None:
    time = FakeTime()
    lim = limiter(time)
    await lim.report_rate_limited(None)
    await lim.acquire()
    await lim.report_rate_limited(None)
    await lim.acquire()
    time.now += 3600

    await lim.report_rate_limited(None)
    reported = time.now
    await lim.acquire()

    assert time.now - reported == pytest.approx(2.0)


async def test_429s_from_calls_already_in_flight_do_not_lengthen_the_pause() -> None:
    time = FakeTime()
    lim = limiter(time)

    await lim.report_rate_limited(None)
    await lim.report_rate_limited(None)
    await lim.report_rate_limited(None)
    reported = time.now
    await lim.acquire()

    assert time.now - reported == pytest.approx(2.0)


async def test_retry_after_from_amocrm_sets_the_pause() -> None:
    time = FakeTime()
    lim = limiter(time)

    await lim.report_rate_limited(300)
    reported = time.now
    await lim.acquire()

    assert time.now - reported == pytest.approx(300)


async def test_max_wait_turns_a_long_pause_into_a_rate_limited_error() -> None:
    time = FakeTime()
    lim = limiter(time, max_wait_s=5)
    await lim.report_rate_limited(300)

    with pytest.raises(AmoRateLimitedError) as caught:
        await lim.acquire()

    assert caught.value.retry_after == pytest.approx(300)
    assert time.sleeps == []


async def test_a_403_stops_all_calls_for_the_cool_down() -> None:
    time = FakeTime()
    lim = limiter(time)
    await lim.report_blocked()

    time.now += 599
    with pytest.raises(AmoBlockedError) as caught:
        await lim.acquire()
    assert caught.value.blocked_for == pytest.approx(1)

    time.now += 1
    await lim.acquire()


async def test_the_403_cool_down_is_configurable() -> None:
    time = FakeTime()
    lim = limiter(time, block_cooldown_s=10)
    await lim.report_blocked()

    time.now += 9.5
    with pytest.raises(AmoBlockedError) as caught:
        await lim.acquire()
    assert caught.value.blocked_for == pytest.approx(0.5)

    time.now += 0.5
    await lim.acquire()


@pytest.mark.parametrize(("rate", "burst"), [(0, None), (-1, None), (5, 0)])
def test_nonsense_settings_are_refused(rate: float, burst: int | None) -> None:
    with pytest.raises(ValueError, match="must be"):
        TokenBucketLimiter(rate, burst)


async def test_no_limiter_never_waits_nor_blocks() -> None:
    lim = NoLimiter()
    await lim.report_blocked()
    await lim.report_rate_limited(5)
    # Completes at once: no pause, no cool-down (it has no clock to wait on).
    await asyncio.wait_for(lim.acquire(), timeout=1)
