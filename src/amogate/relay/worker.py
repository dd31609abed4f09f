"""The relay worker: the loop that sends events to subscribers, in `amogate serve` and
`amogate worker`, beside the lead worker and in the same loop (`deliveries/polling.py`).

It dispatches due deliveries while there are some and a subscriber has a free slot, and
otherwise sleeps until the inbound route of this process wakes it, a send finishes, or
`poll_seconds` pass. Between passes it runs the periodic jobs that are due (the check of
amoCRM's webhook list).
"""

from __future__ import annotations

from amogate.deliveries.polling import POLL_SECONDS, Periodic, PollingLoop
from amogate.deliveries.signals import DeliverySignals
from amogate.relay.sender import RelaySender

__all__ = ["Periodic", "RelayWorker"]


class RelayWorker(PollingLoop):
    def __init__(
        self,
        sender: RelaySender,
        signals: DeliverySignals,
        *,
        poll_seconds: float = POLL_SECONDS,
        periodic: list[Periodic] | None = None,
    ) -> None:
        super().__init__(
            "relay.worker",
            sender.dispatch,
            signals,
            owner=sender.owner,
            close=sender.close,
            poll_seconds=poll_seconds,
            periodic=periodic or [],
        )
        self.sender = sender
