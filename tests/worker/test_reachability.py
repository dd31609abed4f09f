"""amoCRM's reachability as judged from the latest recorded attempts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from amogate.storage.deliveries import Attempt
from amogate.worker.reachability import assess

T0 = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)


def attempt(seconds: int, outcome: str, status: int | None) -> Attempt:
    return Attempt("form", T0 + timedelta(seconds=seconds), 10, outcome, status, None)


def test_nothing_recorded_is_unknown_and_not_reported_down() -> None:
    reach = assess([])
    assert (reach.known, reach.down, reach.describe()) == (False, False, "ok")


def test_a_run_of_failures_without_an_answer_is_down_since_the_first_of_them() -> None:
    newest_first = [
        attempt(30, "transient", 503),
        attempt(20, "transient", None),
        attempt(10, "transient", 500),
        attempt(0, "ok", 200),
    ]
    reach = assess(newest_first)
    assert reach.down
    assert reach.since == T0 + timedelta(seconds=10)
    assert reach.last_status == 503
    assert reach.describe() == (
        "amoCRM is not answering since 2026-05-01T10:00:10+00:00 (last attempt: HTTP 503); "
        "leads are kept and retried"
    )


def test_any_answer_from_amocrm_means_it_is_reachable() -> None:
    for outcome, status in (
        ("ok", 200),
        ("rate_limited", 429),
        ("blocked", 403),
        ("auth", 401),
        ("permanent", 400),
        ("transient", 200),
    ):
        reach = assess([attempt(40, outcome, status), attempt(30, "transient", None)])
        assert not reach.down, outcome
