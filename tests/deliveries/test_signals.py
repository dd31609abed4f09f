"""The intake-to-worker signal: a worker woken at the moment it is stopped still stops."""

from __future__ import annotations

import asyncio

import pytest

from amogate.deliveries.signals import DeliverySignals


@pytest.mark.parametrize("steps_before_cancel", [0, 1, 2, 3, 4])
async def test_a_worker_woken_just_as_it_is_stopped_still_stops(steps_before_cancel: int) -> None:
    signals = DeliverySignals()

    async def worker_loop() -> None:  # the shape of DeliveryWorker.run with nothing to do
        while True:
            await signals.wait_for_work(30)

    worker = asyncio.create_task(worker_loop())
    await asyncio.sleep(0)  # the worker is waiting for work
    signals.wake()  # a lead arrives (or amoCRM was reconnected) ...
    for _ in range(steps_before_cancel):
        await asyncio.sleep(0)
    worker.cancel()  # ... as the gateway shuts down
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(worker, 2)  # a swallowed cancel would wait 30 s: TimeoutError


async def test_a_wake_ends_the_wait_at_once_and_is_consumed() -> None:
    signals = DeliverySignals()
    signals.wake()
    await asyncio.wait_for(signals.wait_for_work(30), 1)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(signals.wait_for_work(5), 0.2)
