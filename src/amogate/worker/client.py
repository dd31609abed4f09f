"""The worker's amoCRM client: on the shared budget, but it reschedules rather than sits out a
long 429 pause (its own `AmoClient`, so the app's client keeps its waiting limiter)."""

from __future__ import annotations

from amogate.amocrm.client import AmoClient
from amogate.connection.service import AmoConnection
from amogate.connection.tokens import NotConnected


class DeliveryClient:
    def __init__(self, amo: AmoConnection, max_pause_wait: float) -> None:
        self.amo = amo
        self.max_pause_wait = max_pause_wait
        self._client: AmoClient | None = None
        self._base = ""

    async def current(self) -> AmoClient:
        """The client for the account's API base now (a new one when the base changed)."""
        base = await self.amo.api_base()
        if not base:
            raise NotConnected("amoCRM is not connected")
        if self._client is None or base != self._base:
            await self.close()
            self._client = self.amo.build_client(base, max_pause_wait=self.max_pause_wait)
            self._base = base
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
