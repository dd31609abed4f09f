"""How each amoCRM failure is classified (once, by type): the outcome the worker's retry policy
acts on, the status and texts the delivery record shows, the waits amoCRM asked for, and the
public answer the API gives for it."""

from __future__ import annotations

import pytest

from amogate.amocrm.errors import (
    AmoAuthError,
    AmoBlockedError,
    AmoError,
    AmoNotFoundError,
    AmoPaymentError,
    AmoPermanentError,
    AmoRateLimitedError,
    AmoRefreshRevokedError,
    AmoTimeoutError,
    AmoTransientError,
    AmoUnavailableError,
)
from amogate.connection.tokens import NeedsReauthorization, NotConnected
from amogate.errors import (
    NEEDS_REAUTHORIZATION,
    NOT_CONNECTED,
    ServiceUnavailable,
    UpstreamError,
    UpstreamTimeout,
    public_error,
)
from amogate.failures import Failure, classify

BODY = '{"title":"amoCRM said so"}'

# error -> (outcome, http_status, detail, message, retry_after, blocked_for, maybe_applied)
CASES: dict[str, tuple[AmoError, tuple[object, ...]]] = {
    "429": (
        AmoRateLimitedError("x", status=429, body_excerpt=BODY, retry_after=7.0),
        ("rate_limited", 429, BODY, "amoCRM rate limit reached (HTTP 429)", 7.0, None, False),
    ),
    "timeout may have reached amoCRM": (
        AmoTimeoutError("x", retry_after=None),
        ("transient", None, *(["amoCRM did not answer in time"] * 2), None, None, True),
    ),
    "503 that surely did nothing": (
        AmoUnavailableError("x", status=503, retry_after=30.0, maybe_applied=False),
        ("transient", 503, *(["amoCRM is unavailable (HTTP 503)"] * 2), 30.0, None, False),
    ),
    "500 that may have applied": (
        AmoTransientError("x", status=500, body_excerpt=BODY),
        ("transient", 500, BODY, "amoCRM is unavailable (HTTP 500)", None, None, True),
    ),
    "401 after a failed refresh": (
        AmoAuthError("x", status=401, body_excerpt=BODY),
        ("auth", 401, BODY, "amoCRM needs (re)authorization (HTTP 401)", None, None, False),
    ),
    "revoked refresh token": (
        AmoRefreshRevokedError("x"),
        ("auth", None, *(["amoCRM needs (re)authorization"] * 2), None, None, False),
    ),
    "403 with a known cool-down": (
        AmoBlockedError("x", status=403, body_excerpt=BODY, blocked_for=120.0),
        ("blocked", 403, BODY, "amoCRM refused access (403) (HTTP 403)", None, 120.0, False),
    ),
    "402": (
        AmoPaymentError("x", status=402),
        (
            "payment",
            402,
            *(["the amoCRM account's paid period has ended (HTTP 402)"] * 2),
            None,
            None,
            False,
        ),
    ),
    "400 validation": (
        AmoPermanentError("x", status=400, body_excerpt=BODY),
        ("permanent", 400, BODY, "amoCRM rejected the request (HTTP 400)", None, None, False),
    ),
    "422": (
        AmoPermanentError("x", status=422),
        ("permanent", 422, *(["amoCRM rejected the request (HTTP 422)"] * 2), None, None, False),
    ),
    # A misrouted request, not the lead's fault: keep the lead and try again.
    "404": (
        AmoNotFoundError("x", status=404),
        ("transient", 404, *(["amoCRM returned an error (HTTP 404)"] * 2), None, None, False),
    ),
    "other permanent status": (
        AmoPermanentError("x", status=409),
        ("transient", 409, *(["amoCRM rejected the request (HTTP 409)"] * 2), None, None, False),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_each_amocrm_failure_is_filed_by_what_the_worker_should_do(
    case: tuple[AmoError, tuple[object, ...]],
) -> None:
    error, expected = case
    assert _as_record(classify(error)) == expected


def _as_record(f: Failure) -> tuple[object, ...]:
    return (
        f.outcome,
        f.http_status,
        f.detail,
        f.message,
        f.retry_after,
        f.blocked_for,
        f.maybe_applied,
    )


def test_no_exception_text_reaches_the_record() -> None:
    failure = classify(AmoTransientError("Bearer secret-token in a traceback", status=502))
    assert "secret-token" not in failure.detail + failure.message


# error -> (public error type, message, Retry-After)
PUBLIC: dict[str, tuple[AmoError, tuple[object, ...]]] = {
    "429 without a wait": (
        AmoRateLimitedError("x", status=429),
        (ServiceUnavailable, "amoCRM rate limit reached", 2.0),
    ),
    "timeout": (AmoTimeoutError("x", retry_after=5.0), (UpstreamTimeout, None, 5.0)),
    "403": (
        AmoBlockedError("x", status=403, blocked_for=60.0),
        (ServiceUnavailable, "amoCRM is unavailable", 60.0),
    ),
    "never connected": (NotConnected("x"), (ServiceUnavailable, NOT_CONNECTED, None)),
    "refresh refused": (
        NeedsReauthorization("x"),
        (ServiceUnavailable, NEEDS_REAUTHORIZATION, None),
    ),
    "401": (AmoAuthError("x", status=401), (ServiceUnavailable, NEEDS_REAUTHORIZATION, None)),
    "404": (AmoNotFoundError("x", status=404), (UpstreamError, "amoCRM returned an error", None)),
}


@pytest.mark.parametrize("case", PUBLIC.values(), ids=PUBLIC.keys())
def test_each_classified_failure_has_one_public_answer(
    case: tuple[AmoError, tuple[object, ...]],
) -> None:
    error, (kind, message, retry_after) = case
    failure = classify(error)
    public = public_error(failure)
    assert type(public) is kind
    assert public.message == (message or kind.message)
    assert public.retry_after == retry_after
    assert public.upstream == failure


def test_the_classification_does_not_read_the_message() -> None:
    # A "not connected" error whose text speaks of reauthorization is still "not connected".
    assert classify(NotConnected("amoCRM needs reauthorization")).kind == "not_connected"
