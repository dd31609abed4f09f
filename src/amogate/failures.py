"""An amoCRM failure, classified once, by its type, where it is caught.

`classify(exc)` turns an `AmoError` into a `Failure`; the worker, the info cache and the public
answer all read that one classification, and nothing re-derives it from a message string:

    kind                   error types                          outcome        public answer
    rate_limited           AmoRateLimitedError (429)            rate_limited   503, Retry-After
    timeout                AmoTimeoutError                      transient      504
    unavailable            other AmoTransientError (5xx, net)   transient      503
    not_connected          NotConnected (no token at all)       auth           503
    reauthorize            NeedsReauthorization, AmoAuthError   auth           503
    blocked                AmoBlockedError (403)                blocked        503, Retry-After
    payment                AmoPaymentError (402)                payment        502
    rejected               AmoPermanentError 400/422            permanent      502
    other                  404, other 4xx, anything else        transient      502

`outcome` is what the worker's retry policy acts on (`worker/retry.py`); the public answer is
`amogate.errors.public_error` (the one place). A 404 or an odd 4xx is most likely a misrouted
request, not the lead's fault, so the worker keeps the lead and tries again.

`message` is a fixed description for people (never exception text); `detail` is amoCRM's own
answer (redacted, truncated) when there was one, else the message.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from amogate.amocrm.errors import (
    AmoAuthError,
    AmoBlockedError,
    AmoError,
    AmoPaymentError,
    AmoPermanentError,
    AmoRateLimitedError,
    AmoTimeoutError,
    AmoTransientError,
)
from amogate.connection.tokens import NeedsReauthorization, NotConnected

Outcome = Literal["transient", "rate_limited", "auth", "blocked", "payment", "permanent"]
Kind = Literal[
    "rate_limited",
    "timeout",
    "unavailable",
    "not_connected",
    "reauthorize",
    "blocked",
    "payment",
    "rejected",
    "other",
]

OUTCOMES: dict[Kind, Outcome] = {
    "rate_limited": "rate_limited",
    "timeout": "transient",
    "unavailable": "transient",
    "not_connected": "auth",
    "reauthorize": "auth",
    "blocked": "blocked",
    "payment": "payment",
    "rejected": "permanent",
    "other": "transient",
}

# The description of each error type, most specific first (the records show these).
DESCRIPTIONS: dict[type[AmoError], str] = {
    AmoTimeoutError: "amoCRM did not answer in time",
    AmoRateLimitedError: "amoCRM rate limit reached",
    AmoTransientError: "amoCRM is unavailable",
    AmoAuthError: "amoCRM needs (re)authorization",
    AmoBlockedError: "amoCRM refused access (403)",
    AmoPaymentError: "the amoCRM account's paid period has ended",
    AmoPermanentError: "amoCRM rejected the request",
}
UNKNOWN_DESCRIPTION = "amoCRM returned an error"


@dataclass(frozen=True)
class Failure:
    """How one amoCRM call failed, in the words the records, the policy and the API use."""

    outcome: Outcome
    http_status: int | None
    detail: str
    message: str
    retry_after: float | None = None
    blocked_for: float | None = None
    # The call may have reached amoCRM (a write's outcome is unknown: reconcile before resending).
    maybe_applied: bool = False
    kind: Kind = "other"

    @property
    def serve_stale(self) -> bool:
        """ "amoCRM cannot answer now" (a kept copy may stand in), not "the access is wrong"."""
        return self.kind in ("rate_limited", "timeout", "unavailable", "blocked")


def classify(exc: AmoError) -> Failure:
    """The one classification of an amoCRM error, by its type."""
    text = next(
        (text for kind, text in DESCRIPTIONS.items() if isinstance(exc, kind)),
        UNKNOWN_DESCRIPTION,
    )
    message = f"{text} (HTTP {exc.status})" if exc.status else text
    kind = _kind(exc)
    failure = Failure(OUTCOMES[kind], exc.status, exc.body_excerpt or message, message, kind=kind)
    if isinstance(exc, AmoTransientError):
        maybe_applied = exc.maybe_applied and kind != "rate_limited"
        return replace(failure, retry_after=exc.retry_after, maybe_applied=maybe_applied)
    if isinstance(exc, AmoBlockedError):
        return replace(failure, blocked_for=exc.blocked_for)
    return failure


def _kind(exc: AmoError) -> Kind:
    if isinstance(exc, AmoRateLimitedError):
        return "rate_limited"
    if isinstance(exc, AmoTimeoutError):
        return "timeout"
    if isinstance(exc, AmoTransientError):
        return "unavailable"
    if isinstance(exc, NotConnected) and not isinstance(exc, NeedsReauthorization):
        return "not_connected"
    if isinstance(exc, AmoAuthError):
        return "reauthorize"
    if isinstance(exc, AmoBlockedError):
        return "blocked"
    if isinstance(exc, AmoPaymentError):
        return "payment"
    if isinstance(exc, AmoPermanentError) and exc.status in (400, 422):
        return "rejected"
    return "other"
