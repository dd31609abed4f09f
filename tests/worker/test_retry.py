"""The retry policy: backoff with jitter from seconds up to an hour, 72 h, outcomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amogate.worker.retry import Decision, Outcome, RetryPolicy

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy()
LATER = NOW + timedelta(hours=72)


def middle() -> float:
    return 0.5


def test_backoff_starts_at_about_five_seconds_and_doubles() -> None:
    delays = [POLICY.backoff(n, 0.5) for n in range(1, 6)]
    assert delays == [5.0, 10.0, 20.0, 40.0, 80.0]


def test_backoff_is_capped_at_one_hour() -> None:
    assert POLICY.backoff(30, 0.99) == 3600.0
    assert POLICY.backoff(10_000, 0.0) == pytest.approx(3600.0 * 0.8)


@given(attempt=st.integers(min_value=1, max_value=500), rand=st.floats(0, 1, exclude_max=True))
def test_jitter_keeps_every_delay_within_twenty_percent_and_the_cap(
    attempt: int, rand: float
) -> None:
    plain = min(5.0 * 2 ** min(attempt - 1, 64), 3600.0)
    delay = POLICY.backoff(attempt, rand)
    assert plain * 0.8 - 1e-9 <= delay <= min(plain * 1.2, 3600.0) + 1e-9


@given(attempt=st.integers(min_value=1, max_value=40), retry_after=st.floats(0, 7200))
def test_retry_after_from_amocrm_is_never_undercut(attempt: int, retry_after: float) -> None:
    decision = POLICY.decide(
        "rate_limited",
        attempt=attempt,
        now=NOW,
        give_up_at=NOW + timedelta(days=30),
        retry_after=retry_after,
        rand=middle,
    )
    assert decision.retry_at is not None
    assert decision.retry_at >= NOW + timedelta(seconds=retry_after)
    assert decision.count_attempt


def test_validation_rejection_fails_at_once() -> None:
    decision = POLICY.decide("permanent", attempt=1, now=NOW, give_up_at=LATER, rand=middle)
    assert decision.give_up


def test_transient_failures_give_up_after_the_maximum_age() -> None:
    before = POLICY.decide(
        "transient", attempt=60, now=LATER - timedelta(seconds=1), give_up_at=LATER, rand=middle
    )
    after = POLICY.decide("transient", attempt=61, now=LATER, give_up_at=LATER, rand=middle)
    assert before.retry_at == LATER  # one last try at the deadline
    assert after.give_up


@pytest.mark.parametrize(
    ("outcome", "wait"), [("auth", 60.0), ("blocked", 600.0), ("payment", 3600.0)]
)
def test_account_problems_wait_without_burning_attempts_or_giving_up(
    outcome: str, wait: float
) -> None:
    long_past_deadline = LATER + timedelta(days=10)
    decision = POLICY.decide(
        outcome,  # type: ignore[arg-type]
        attempt=99,
        now=long_past_deadline,
        give_up_at=LATER,
        rand=middle,
    )
    assert decision.retry_at == long_past_deadline + timedelta(seconds=wait)
    assert not decision.count_attempt


def test_a_403_cool_down_longer_than_the_default_is_respected() -> None:
    decision = POLICY.decide(
        "blocked", attempt=1, now=NOW, give_up_at=LATER, blocked_for=1800.0, rand=middle
    )
    assert decision.retry_at == NOW + timedelta(seconds=1800)


def test_a_policy_with_a_cap_below_its_base_is_refused() -> None:
    with pytest.raises(ValueError, match="base_delay"):
        RetryPolicy(base_delay=10, max_delay=1)


# outcome -> the whole decision at attempt 3 (backoff with middle jitter: 20 s).
DECISIONS = {
    "permanent": Decision(None, True, "amoCRM rejected the data"),
    "auth": Decision(NOW + timedelta(seconds=60), False, "waiting for reauthorization"),
    "blocked": Decision(NOW + timedelta(seconds=600), False, "amoCRM refused access (403)"),
    "payment": Decision(NOW + timedelta(seconds=3600), False, "amoCRM account needs payment"),
    "transient": Decision(NOW + timedelta(seconds=20), True, "will retry"),
    "rate_limited": Decision(NOW + timedelta(seconds=20), True, "will retry"),
}


@pytest.mark.parametrize("outcome", DECISIONS)
def test_each_outcome_gets_its_whole_decision(outcome: Outcome) -> None:
    decision = POLICY.decide(outcome, attempt=3, now=NOW, give_up_at=LATER, rand=middle)
    assert decision == DECISIONS[outcome]


@pytest.mark.parametrize("outcome", ["transient", "rate_limited"])
def test_past_the_deadline_a_retryable_failure_gives_up_and_says_why(outcome: Outcome) -> None:
    decision = POLICY.decide(outcome, attempt=9, now=LATER, give_up_at=LATER, rand=middle)
    assert decision == Decision(None, True, "gave up: amoCRM did not accept the lead in time")


def test_short_waits_are_not_rounded_up() -> None:
    """Tiny delays stay tiny: nothing adds a hidden one-second floor."""
    quick = RetryPolicy(base_delay=0.2, jitter=0.0, blocked_wait=0.5)
    retry = quick.decide("transient", attempt=1, now=NOW, give_up_at=LATER, rand=middle)
    blocked = quick.decide("blocked", attempt=1, now=NOW, give_up_at=LATER, rand=middle)
    assert retry.retry_at == NOW + timedelta(seconds=0.2)
    assert blocked.retry_at == NOW + timedelta(seconds=0.5)
