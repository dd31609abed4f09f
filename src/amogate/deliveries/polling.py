"""The loop shared by the lead worker and the relay worker.

It runs one pass of work while passes find some, and otherwise sleeps until its process wakes
it (a lead or an event stored, a send finished) or `poll_seconds` pass (rows stored by other
processes, retries coming due). Between passes it runs the periodic jobs that are due. A pass
that fails (a database hiccup) is logged and tried again after a pause: the leases in the
database bring its rows back, so the loop itself never ends but by `stop()`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import structlog

from amogate.deliveries.signals import DeliverySignals

POLL_SECONDS = 1.0
ERROR_PAUSE_SECONDS = 2.0


class Periodic(Protocol):
    def due(self) -> bool: ...

    async def run_once(self) -> object: ...


class PollingLoop:
    def __init__(
        self,
        name: str,
        work: Callable[[], Awaitable[int]],
        signals: DeliverySignals,
        *,
        owner: str,
        close: Callable[[], Awaitable[None]],
        poll_seconds: float = POLL_SECONDS,
        periodic: Sequence[Periodic] = (),
    ) -> None:
        """`name` prefixes its log events (`<name>.started`, `<name>.pass.failed`); `work` is
        one pass, returning how much it found; `close` releases what the work holds."""
        self.name = name
        self.work = work
        self.signals = signals
        self.owner = owner
        self.close = close
        self.poll_seconds = poll_seconds
        self.periodic = list(periodic)
        self._log = structlog.get_logger(f"amogate.{name}")
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"amogate-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.close()

    async def run(self) -> None:
        self._log.info(f"{self.name}.started", owner=self.owner)
        while True:
            try:
                found = await self.work()
                for job in self.periodic:
                    if job.due():
                        await job.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                self._log.exception(f"{self.name}.pass.failed")
                await asyncio.sleep(ERROR_PAUSE_SECONDS)
                continue
            if found == 0:
                await self.signals.wait_for_work(self.poll_seconds)
