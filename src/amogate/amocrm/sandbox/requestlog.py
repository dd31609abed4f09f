"""Every request the sandbox received, and counters derived from them (control API only)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

MAX_ENTRIES = 50_000
_ID_SEGMENT = re.compile(r"/\d+(?=/|$)")
_UID_SEGMENT = re.compile(r"/unsorted/[0-9a-f]{20,}(?=/|$)")


def endpoint_of(method: str, path: str) -> str:
    """`GET /api/v4/leads/{id}`: the route a request hit, ids folded so counts group well."""
    path = _UID_SEGMENT.sub("/unsorted/{uid}", path)
    return f"{method} {_ID_SEGMENT.sub('/{id}', path)}"


@dataclass
class RequestLog:
    entries: list[dict[str, Any]] = field(default_factory=list)
    by_endpoint: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)
    by_fault: Counter[str] = field(default_factory=Counter)
    seq: int = 0

    def clear(self) -> None:
        self.entries.clear()
        self.by_endpoint.clear()
        self.by_status.clear()
        self.by_fault.clear()

    def record(
        self,
        *,
        time: float,
        method: str,
        path: str,
        query: str,
        body: Any,
        status: int | None,
        fault: str | None,
        client: str,
        duration_ms: float,
    ) -> dict[str, Any]:
        """Add one entry; `status` None means no HTTP answer was given (down, hung)."""
        self.seq += 1
        entry = {
            "seq": self.seq,
            "time": time,
            "method": method,
            "path": path,
            "query": query,
            "status": status,
            "body": body,
            "fault": fault,
            "client": client,
            "duration_ms": round(duration_ms, 3),
        }
        self.entries.append(entry)
        if len(self.entries) > MAX_ENTRIES:
            del self.entries[: len(self.entries) - MAX_ENTRIES]
        self.by_endpoint[endpoint_of(method, path)] += 1
        self.by_status["none" if status is None else str(status)] += 1
        if fault is not None:
            self.by_fault[fault] += 1
        return entry

    def since(self, seq: int) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["seq"] > seq]
