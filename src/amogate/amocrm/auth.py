"""Bearer authentication for amoCRM calls, as an httpx auth flow.

The flow asks a ``TokenProvider`` for the current token, and on a 401 asks it once for a fresh
one and repeats the request once. A second 401 is handed back to the caller, which maps it to
``AmoAuthError``. The budget is not spent here: the client takes a slot for every request this
flow sends, after the token is ready (see ``client.SlotPerRequest``). Where tokens live and how
refreshes are serialised is the provider's business.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from typing import Protocol

import httpx


class TokenProvider(Protocol):
    async def access_token(self) -> str:
        """The token to use now (refreshing it first if it is about to expire)."""
        ...

    async def refresh_after_401(self, rejected_token: str) -> str | None:
        """A token other than ``rejected_token``, or None when nothing can be refreshed."""
        ...


class StaticTokenProvider:
    """A token that is never refreshed: long-lived tokens, tests."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "StaticTokenProvider(token=<hidden>)"

    async def access_token(self) -> str:
        return self._token

    async def refresh_after_401(self, rejected_token: str) -> str | None:
        return None


class BearerAuth(httpx.Auth):
    def __init__(self, provider: TokenProvider) -> None:
        self.provider = provider

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("BearerAuth works with httpx.AsyncClient only")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.provider.access_token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        fresh = await self.provider.refresh_after_401(token)
        if fresh is None or fresh == token:
            return
        request.headers["Authorization"] = f"Bearer {fresh}"
        yield request
