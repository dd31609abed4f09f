"""Injected faults: what a misbehaving amoCRM looks like to a client.

Modes: `down` (no HTTP answer at all: connection refused/reset), `timeout` (the request is
accepted and never answered while the fault lasts), `500`, `429` (JSON body), `html429`
(nginx-style HTML body, as amoCRM users report), `403` (HTML "blocked" page), `400` (a problem
JSON "Request validation failed" naming no item or field: amoCRM refusing a request as a
whole), `slow` (answer normally after `delay_s`). A fault applies to `/api/v4/*` and
`/oauth2/*` (narrowed by `path_prefix`), lasts `duration_s` seconds and/or the next `count`
matching requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from amogate.amocrm.sandbox.clock import Clock

MODES = ("down", "500", "429", "html429", "403", "400", "slow", "timeout")
FAULTABLE_PREFIXES = ("/api/v4/", "/oauth2/")


class FaultSpecError(ValueError):
    """The control API got a fault it cannot apply."""


@dataclass
class Fault:
    mode: str
    until: float | None
    path_prefix: str | None = None
    remaining: int | None = None
    delay_s: float = 0.0
    ended: bool = False

    def covers(self, path: str, now: float) -> bool:
        if self.until is not None and now >= self.until:
            return False
        if self.remaining is not None and self.remaining <= 0:
            return False
        if not path.startswith(FAULTABLE_PREFIXES):
            return False
        return self.path_prefix is None or path.startswith(self.path_prefix)

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "until": self.until,
            "path_prefix": self.path_prefix,
            "remaining": self.remaining,
            "delay_s": self.delay_s,
        }


@dataclass
class FaultSet:
    clock: Clock
    faults: list[Fault] = field(default_factory=list)
    injected: int = 0

    def add(self, spec: dict[str, Any]) -> Fault:
        """Add a fault from the control API's JSON; raises `FaultSpecError` on bad input."""
        mode = str(spec.get("mode", ""))
        if mode not in MODES:
            raise FaultSpecError(f"mode must be one of {', '.join(MODES)}")
        duration = _number(spec, "duration_s")
        count = _number(spec, "count")
        delay = _number(spec, "delay_s")
        if duration is None and count is None:
            raise FaultSpecError("give duration_s, count or both")
        prefix = spec.get("path_prefix")
        if prefix is not None and not isinstance(prefix, str):
            raise FaultSpecError("path_prefix must be a string")
        fault = Fault(
            mode=mode,
            until=None if duration is None else self.clock() + duration,
            path_prefix=prefix,
            remaining=None if count is None else int(count),
            delay_s=delay if delay is not None else (1.0 if mode == "slow" else 0.0),
        )
        self.faults.append(fault)
        return fault

    def clear(self) -> None:
        for fault in self.faults:
            fault.ended = True
        self.faults.clear()

    def take(self, path: str) -> Fault | None:
        """The fault this request meets, if any; consumes one of its `count`."""
        now = self.clock()
        self.faults = [f for f in self.faults if _alive(f, now)]
        for fault in self.faults:
            if fault.covers(path, now):
                if fault.remaining is not None:
                    fault.remaining -= 1
                self.injected += 1
                return fault
        return None

    def peek(self, path: str) -> Fault | None:
        """The fault that would apply now, without consuming it."""
        now = self.clock()
        return next((f for f in self.faults if f.covers(path, now)), None)

    def is_active(self, fault: Fault) -> bool:
        """Whether a taken fault still lasts: a hung request waits for this to turn False.

        A count-only fault has no end time, so its hung requests wait for `clear()`.
        """
        return not fault.ended and (fault.until is None or self.clock() < fault.until)

    def active(self) -> list[dict[str, Any]]:
        now = self.clock()
        return [f.as_dict() for f in self.faults if _alive(f, now)]


def _alive(fault: Fault, now: float) -> bool:
    if fault.until is not None and now >= fault.until:
        return False
    return fault.remaining is None or fault.remaining > 0


def _number(spec: dict[str, Any], key: str) -> float | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise FaultSpecError(f"{key} must be a non-negative number")
    return float(value)
