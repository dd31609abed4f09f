"""The relay worker: the loop that sends events to subscribers, in `amogate serve` and
`amogate worker`, beside the lead worker and built the same way (wake-up signal, poll, leases).

It dispatches due deliveries while there are some and a subscriber has a free slot, and
otherwise sleeps until the inbound route of this process wakes it, a send finishes, or
`poll_seconds` pass (events stored by other processes, retries coming due). Between passes it
runs the periodic jobs that are due (the check of amoCRM's webhook list).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

import structlog

from amogate.deliveries.signals import DeliverySignals
from amogate.relay.sender import RelaySender

log = structlog.get_logger("amogate.relay")

POLL_SECONDS = 1.0
ERROR_PAUSE_SECONDS = 2.0


class Periodic(Protocol):
    def due(self) -> bool: ...

    async def run_once(self) -> object: ...


class RelayWorker:
    def __init__(
        self,
        sender: RelaySender,
        signals: DeliverySignals,
        *,
        poll_seconds: float = POLL_SECONDS,
        periodic: list[Periodic] | None = None,
    ) -> None:
        self.sender = sender
        self.signals = signals
        self.poll_seconds = poll_seconds
        self.periodic = periodic or []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="amogate-relay-worker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.sender.close()

    async def run(self) -> None:
        log.info("relay.worker.started", owner=self.sender.owner)
        while True:
            try:
                started = await self.sender.dispatch()
                for job in self.periodic:
                    if job.due():
                        await job.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                # A database hiccup must not end the worker; the leases bring the rows back.
                log.exception("relay.worker.pass.failed")
                await asyncio.sleep(ERROR_PAUSE_SECONDS)
                continue
            if started == 0:
                await self.signals.wait_for_work(self.poll_seconds)
