"""Helpers for the token tests: a hand-moved clock for the token manager, and the sandbox's
view of what happened on its OAuth endpoint."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.gateway import Harness


class FakeClock:
    """Stands in for `datetime.now(UTC)` in `TokenManager.clock`; moved by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


async def oauth_stats(h: Harness) -> dict[str, int]:
    stats: dict[str, Any] = (await h.sandbox.get("/_sandbox/stats")).json()
    oauth: dict[str, int] = stats["oauth"]
    return oauth


async def statuses(h: Harness, path: str) -> list[int | None]:
    return [entry["status"] for entry in await h.requests(path)]


async def presented_refresh_tokens(h: Harness) -> list[str]:
    """Every refresh token sent to the sandbox's token endpoint, in order."""
    tokens = []
    for entry in await h.requests("/oauth2/access_token"):
        body = entry.get("body")
        if isinstance(body, dict) and body.get("grant_type") == "refresh_token":
            tokens.append(str(body.get("refresh_token")))
    return tokens
