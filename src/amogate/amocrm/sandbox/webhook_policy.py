"""When a webhook attempt counts as failed, when it is retried, when the webhook is disabled.

amoCRM's rules (amocrm-api.md §4.11), with the sandbox's reading where they are vague:
- An attempt succeeds when the destination answers 2xx within `timeout_s` (amoCRM: 2 s; it
  accepts 100-299, and an HTTP client only ever sees a final status of 200 or more). A non-2xx
  answer, no answer (refused, reset) and a slower answer are failures.
- Retries, from a third-party summary of Kommo's table: the 2nd attempt 5 minutes after the
  1st, the 3rd 15 minutes after it; a 4th and a 5th "within the hour" only when the last answer
  was 499 or 5xx. The sandbox places those at 30 and 60 minutes (assumption). No answer at all
  is amoCRM's code 0 (the 0-99 class), so a timeout gets 3 attempts, like a 404. Every delay is
  multiplied by `retry_factor` (tests use 0.001: 5 minutes become 0.3 s).
- Disable: after a failed attempt, when more than `disable_failures` attempts of that webhook
  failed within the last `disable_window_s` seconds (the latest being this one), the webhook is
  disabled. Saving it again re-enables it and forgets its failures (assumption).
Defaults are amoCRM's; `SandboxConfig.webhook_*`, the `--webhook-*` flags and
`PATCH /_sandbox/settings` change them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from amogate.amocrm.sandbox.config import SandboxConfig

# When attempt n (1-based) is made, in seconds after the first one.
ATTEMPT_OFFSETS_S = (0, 300, 900, 1800, 3600)
SHORT_ATTEMPTS = 3
LONG_ATTEMPTS = len(ATTEMPT_OFFSETS_S)


class PolicyError(ValueError):
    """A setting the control API cannot apply."""


@dataclass
class WebhookPolicy:
    timeout_s: float = 2.0
    retry_factor: float = 1.0
    disable_failures: int = 100
    disable_window_s: float = 7200.0

    @classmethod
    def from_config(cls, config: SandboxConfig) -> WebhookPolicy:
        return cls(
            timeout_s=config.webhook_timeout_s,
            retry_factor=config.webhook_retry_factor,
            disable_failures=config.webhook_disable_failures,
            disable_window_s=config.webhook_disable_window_s,
        )

    def next_delay_s(self, attempt: int, status: int | None) -> float | None:
        """amoCRM's seconds from failed attempt `attempt` to the next one; None: give up."""
        long_retry = status is not None and (status == 499 or 500 <= status <= 599)
        limit = LONG_ATTEMPTS if long_retry else SHORT_ATTEMPTS
        if attempt >= limit:
            return None
        return float(ATTEMPT_OFFSETS_S[attempt] - ATTEMPT_OFFSETS_S[attempt - 1])

    def as_dict(self) -> dict[str, Any]:
        return {
            "webhook_timeout_s": self.timeout_s,
            "webhook_retry_factor": self.retry_factor,
            "webhook_disable_failures": self.disable_failures,
            "webhook_disable_window_s": self.disable_window_s,
        }

    def update(self, values: Mapping[str, Any]) -> None:
        """Apply `webhook_*` settings; `PolicyError` (and no change) on a bad one."""
        new = {
            "timeout_s": _positive(values, "webhook_timeout_s", self.timeout_s),
            "retry_factor": _positive(values, "webhook_retry_factor", self.retry_factor),
            "disable_window_s": _positive(
                values, "webhook_disable_window_s", self.disable_window_s
            ),
        }
        failures = values.get("webhook_disable_failures", self.disable_failures)
        if isinstance(failures, bool) or not isinstance(failures, int) or failures < 0:
            raise PolicyError("webhook_disable_failures must be a non-negative integer")
        self.timeout_s = new["timeout_s"]
        self.retry_factor = new["retry_factor"]
        self.disable_window_s = new["disable_window_s"]
        self.disable_failures = failures


@dataclass
class FailureWindow:
    """Times of one webhook's failed attempts within the disable window."""

    times: deque[float] = field(default_factory=deque)

    def add(self, now: float, policy: WebhookPolicy) -> bool:
        """Record a failure at `now`; True when the webhook must now be disabled."""
        self.times.append(now)
        while self.times and self.times[0] <= now - policy.disable_window_s:
            self.times.popleft()
        return len(self.times) > policy.disable_failures


def _positive(values: Mapping[str, Any], key: str, current: float) -> float:
    value = values.get(key, current)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise PolicyError(f"{key} must be a positive number")
    return float(value)
