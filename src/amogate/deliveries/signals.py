"""In-process signals between the lead intake and the worker of the same process.

`wake()` tells the worker a lead was just stored, so it does not wait for its next poll;
`settled(ids)` tells waiting requests that those deliveries changed, so they re-read them.
Workers in other processes are reached by polling the table instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable


class DeliverySignals:
    def __init__(self) -> None:
        self._wake = asyncio.Event()
        self._waiters: dict[str, set[asyncio.Event]] = {}

    def wake(self) -> None:
        self._wake.set()

    async def wait_for_work(self, seconds: float) -> None:
        """Return when woken, or after `seconds`. (`asyncio.timeout`, not `wait_for`: on
        Python 3.11 `wait_for` swallows a cancellation that arrives just as the event is set,
        and the worker would then never stop.)"""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        self._wake.clear()

    def watch(self, delivery_id: str) -> asyncio.Event:
        event = asyncio.Event()
        self._waiters.setdefault(delivery_id, set()).add(event)
        return event

    def unwatch(self, delivery_id: str, event: asyncio.Event) -> None:
        events = self._waiters.get(delivery_id)
        if events is not None:
            events.discard(event)
            if not events:
                del self._waiters[delivery_id]

    def settled(self, ids: Iterable[str]) -> None:
        for delivery_id in ids:
            for event in self._waiters.get(delivery_id, ()):
                event.set()
