"""amoCRM's webhook retry schedule and disable rule as a pure policy (amocrm-api.md §4.11)."""

from __future__ import annotations

import pytest

from amogate.amocrm.sandbox.webhook_policy import FailureWindow, PolicyError, WebhookPolicy


@pytest.mark.parametrize(
    ("status", "delays"),
    [
        (500, [300.0, 600.0, 900.0, 1800.0, None]),
        (503, [300.0, 600.0, 900.0, 1800.0, None]),
        (499, [300.0, 600.0, 900.0, 1800.0, None]),
        (None, [300.0, 600.0, None]),  # no answer: amoCRM's code 0
        (404, [300.0, 600.0, None]),
        (301, [300.0, 600.0, None]),
        (429, [300.0, 600.0, None]),
    ],
)
def test_retries_follow_amocrms_schedule(status: int | None, delays: list[float | None]) -> None:
    policy = WebhookPolicy()

    assert [policy.next_delay_s(n, status) for n in range(1, len(delays) + 1)] == delays


def test_the_webhook_is_disabled_past_the_limit_within_the_window_only() -> None:
    policy = WebhookPolicy(disable_failures=100, disable_window_s=7200)
    window = FailureWindow()

    verdicts = [window.add(1000.0 + i, policy) for i in range(101)]
    assert verdicts == [False] * 100 + [True]

    aged = FailureWindow()
    for i in range(100):
        assert not aged.add(float(i), policy)
    # 7,200 s after the first failure it no longer counts: still 100 in the window.
    assert not aged.add(7200.0, policy)
    assert aged.add(7200.5, policy)


def test_policy_updates_are_checked_whole() -> None:
    policy = WebhookPolicy()

    with pytest.raises(PolicyError):
        policy.update({"webhook_timeout_s": 0.5, "webhook_disable_failures": -1})
    with pytest.raises(PolicyError):
        policy.update({"webhook_retry_factor": True})
    assert policy == WebhookPolicy()

    policy.update({"webhook_timeout_s": 0.5, "webhook_disable_failures": 3})
    assert (policy.timeout_s, policy.disable_failures) == (0.5, 3)
