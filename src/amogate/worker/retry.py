"""The retry policy: what to do after an attempt, as a pure function of its outcome.

Backoff: attempt n (1-based) waits ``base * factor**(n-1)`` seconds capped at ``max_delay``,
then scaled by a random factor in ``[1 - jitter, 1 + jitter]`` (still capped), so a crowd of
leads that failed together does not come back together. An amoCRM ``retry_after`` is a floor.
Transient failures are retried until ``give_up_at`` (created + max age, 72 h by default), then
the delivery fails.

By outcome:

=============  ================================================  =============  ==========
outcome        next attempt                                      counts          may give up
=============  ================================================  =============  ==========
transient      backoff (>= retry_after)                          yes            yes
rate_limited   backoff (>= retry_after)                          yes            yes
auth           ``auth_wait`` (waits for reauthorization)         no             no
blocked (403)  max(blocked_for, ``blocked_wait``)                no             no
payment (402)  ``payment_wait``                                  no             no
permanent      -- fails at once                                  yes            --
=============  ================================================  =============  ==========

401/402/403 never fail a lead: the lead waits for a human to fix the account.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from amogate.failures import Outcome

__all__ = ["Decision", "Outcome", "RetryPolicy"]


@dataclass(frozen=True)
class Decision:
    """``retry_at`` None means: give up (the delivery fails)."""

    retry_at: datetime | None
    count_attempt: bool
    reason: str

    @property
    def give_up(self) -> bool:
        return self.retry_at is None


@dataclass(frozen=True)
class RetryPolicy:
    base_delay: float = 5.0
    max_delay: float = 3600.0
    factor: float = 2.0
    jitter: float = 0.2
    max_age: timedelta = timedelta(hours=72)
    auth_wait: float = 60.0
    blocked_wait: float = 600.0
    payment_wait: float = 3600.0

    def __post_init__(self) -> None:
        if self.base_delay <= 0 or self.max_delay < self.base_delay:
            raise ValueError("need 0 < base_delay <= max_delay")
        if self.factor < 1 or not 0 <= self.jitter < 1:
            raise ValueError("need factor >= 1 and 0 <= jitter < 1")

    def backoff(self, attempt: int, rand: float) -> float:
        """Seconds before attempt ``attempt + 1`` after ``attempt`` failures; ``rand`` in [0, 1)."""
        exponent = min(max(attempt, 1) - 1, 64)
        delay = min(self.base_delay * self.factor**exponent, self.max_delay)
        spread = 1 - self.jitter + 2 * self.jitter * rand
        return min(delay * spread, self.max_delay)

    def decide(
        self,
        outcome: Outcome,
        *,
        attempt: int,
        now: datetime,
        give_up_at: datetime,
        retry_after: float | None = None,
        blocked_for: float | None = None,
        rand: Callable[[], float],
    ) -> Decision:
        """What to do after failed attempt number ``attempt`` (1-based, counting this one)."""
        if outcome == "permanent":
            return Decision(None, True, "amoCRM rejected the data")
        if outcome == "auth":
            return Decision(now + _s(self.auth_wait), False, "waiting for reauthorization")
        if outcome == "blocked":
            wait = max(blocked_for or 0.0, self.blocked_wait)
            return Decision(now + _s(wait), False, "amoCRM refused access (403)")
        if outcome == "payment":
            return Decision(now + _s(self.payment_wait), False, "amoCRM account needs payment")
        delay = max(self.backoff(attempt, rand()), retry_after or 0.0)
        retry_at = now + _s(delay)
        if now >= give_up_at:
            return Decision(None, True, "gave up: amoCRM did not accept the lead in time")
        return Decision(min(retry_at, max(give_up_at, now)), True, "will retry")


def _s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)
