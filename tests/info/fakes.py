"""A clock the tests move by hand, and a tiny in-memory amoCRM stand-in for cache unit tests."""

from __future__ import annotations

import asyncio
from typing import Any

from amogate.amocrm.errors import AmoError
from amogate.info.cache import Kind


class FakeClock:
    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeSource:
    """Answers from `data`; counts fetches; can be held open (`gate`) or made to fail."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.calls: list[str] = []
        self.failure: AmoError | None = None
        self.gate: asyncio.Event | None = None

    async def fetch(self, kind: Kind) -> Any:
        self.calls.append(kind)
        if self.gate is not None:
            await self.gate.wait()
        if self.failure is not None:
            raise self.failure
        return self.data[kind]
