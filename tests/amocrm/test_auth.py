from __future__ import annotations

import httpx
import pytest

from amogate.amocrm.auth import BearerAuth, StaticTokenProvider
from amogate.amocrm.errors import AmoAuthError, AmoRateLimitedError, AmoRefreshRevokedError
from tests.amocrm.helpers import make_client, problem


class RotatingProvider:
    """Hands out ``token-1`` and, after each 401, the next token in line."""

    def __init__(self, *, fail_with: Exception | None = None) -> None:
        self.current = "token-1"
        self.rejected: list[str] = []
        self.fail_with = fail_with

    async def access_token(self) -> str:
        return self.current

    async def refresh_after_401(self, rejected_token: str) -> str | None:
        self.rejected.append(rejected_token)
        if self.fail_with is not None:
            raise self.fail_with
        self.current = f"token-{int(self.current.split('-')[1]) + 1}"
        return self.current


class AcceptsOnly:
    def __init__(self, token: str) -> None:
        self.token = token
        self.seen: list[str | None] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request.headers.get("Authorization"))
        if request.headers.get("Authorization") == f"Bearer {self.token}":
            return httpx.Response(200, json={"id": 1})
        return problem(401, "Invalid user name or password")


async def test_requests_carry_the_bearer_token() -> None:
    server = AcceptsOnly("token-1")
    async with make_client(server) as client:
        await client.get_account()

    assert server.seen == ["Bearer token-1"]


async def test_a_401_refreshes_once_and_repeats_the_request_with_the_new_token() -> None:
    server = AcceptsOnly("token-2")
    provider = RotatingProvider()
    async with make_client(server, provider=provider) as client:
        account = await client.get_account()

    assert account == {"id": 1}
    assert provider.rejected == ["token-1"]
    assert server.seen == ["Bearer token-1", "Bearer token-2"]


async def test_a_second_401_is_an_auth_error_without_another_refresh() -> None:
    server = AcceptsOnly("never")
    provider = RotatingProvider()
    async with make_client(server, provider=provider) as client:
        with pytest.raises(AmoAuthError):
            await client.get_account()

    assert provider.rejected == ["token-1"]
    assert server.seen == ["Bearer token-1", "Bearer token-2"]


async def test_a_write_rejected_twice_is_sent_twice_at_most() -> None:
    server = AcceptsOnly("never")
    async with make_client(server, provider=RotatingProvider()) as client:
        with pytest.raises(AmoAuthError):
            await client.create_leads([{"name": "x"}])

    assert len(server.seen) == 2


async def test_a_long_lived_token_is_not_refreshed_and_the_request_not_repeated() -> None:
    server = AcceptsOnly("other")
    async with make_client(server, provider=StaticTokenProvider("long-lived")) as client:
        with pytest.raises(AmoAuthError):
            await client.get_account()

    assert server.seen == ["Bearer long-lived"]


async def test_a_refresh_that_fails_surfaces_the_providers_error() -> None:
    server = AcceptsOnly("token-2")
    provider = RotatingProvider(fail_with=AmoRefreshRevokedError("Token has been revoked"))
    async with make_client(server, provider=provider) as client:
        with pytest.raises(AmoRefreshRevokedError):
            await client.get_account()

    assert server.seen == ["Bearer token-1"]


async def test_the_repeated_request_keeps_its_body() -> None:
    bodies: list[bytes] = []

    def server(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        if request.headers["Authorization"] == "Bearer token-2":
            return httpx.Response(200, json={"_embedded": {"leads": [{"id": 5}]}})
        return problem(401, "expired")

    async with make_client(server, provider=RotatingProvider()) as client:
        created = await client.create_leads([{"name": "Заявка"}])

    assert created == [{"id": 5}]
    assert bodies[0] == bodies[1]
    assert "Заявка".encode() in bodies[1]


def test_bearer_auth_refuses_a_sync_client() -> None:
    with (
        httpx.Client(
            auth=BearerAuth(StaticTokenProvider("t")),
            transport=httpx.MockTransport(lambda r: httpx.Response(200)),
        ) as client,
        pytest.raises(RuntimeError, match="AsyncClient"),
    ):
        client.get("https://x.amocrm.ru/")


def test_static_provider_repr_hides_the_token() -> None:
    assert "secret" not in repr(StaticTokenProvider("secret"))


class Timeline:
    """Records, in order, the token look-ups, the budget slots and the requests on the wire."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def provider(self) -> RotatingProvider:
        timeline = self

        class Recording(RotatingProvider):
            async def access_token(self) -> str:
                timeline.events.append("token")
                return await super().access_token()

            async def refresh_after_401(self, rejected_token: str) -> str | None:
                timeline.events.append("refresh")
                return await super().refresh_after_401(rejected_token)

        return Recording()

    async def acquire(self) -> None:
        self.events.append("slot")

    async def report_rate_limited(self, retry_after: float | None) -> None:
        return None

    async def report_blocked(self) -> None:
        return None


async def test_each_request_takes_its_slot_after_its_token_is_ready() -> None:
    """A refresh (a lock and a call to the token endpoint) taken after the slot held the
    request back while the next slot's request left on time: amoCRM saw them together."""
    timeline = Timeline()
    accepts = AcceptsOnly("token-2")

    def server(request: httpx.Request) -> httpx.Response:
        timeline.events.append("sent")
        return accepts(request)

    async with make_client(server, provider=timeline.provider(), limiter=timeline) as client:
        await client.get_account()

    assert timeline.events == ["token", "slot", "sent", "refresh", "slot", "sent"]


async def test_a_call_that_got_no_slot_is_not_counted_as_a_call_to_amocrm() -> None:
    class Paused(Timeline):
        async def acquire(self) -> None:
            raise AmoRateLimitedError("paused", retry_after=30.0, maybe_applied=False)

    calls: list[tuple[str, int | None, float]] = []
    async with make_client(AcceptsOnly("token-1"), limiter=Paused(), calls=calls) as client:
        with pytest.raises(AmoRateLimitedError):
            await client.get_account()

    assert calls == []
