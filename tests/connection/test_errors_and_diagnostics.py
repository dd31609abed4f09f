"""amoCRM's failures as the gateway sees them: a 429 pauses the shared budget, a 403 stops
calls from every process for a cool-down, 5xx and dead connections are "unavailable". And the
diagnostics never show a secret."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from amogate.amocrm.auth import BearerAuth
from amogate.amocrm.client import AmoClient
from amogate.amocrm.errors import (
    AmoBlockedError,
    AmoRateLimitedError,
    AmoTimeoutError,
    AmoTransientError,
    AmoUnavailableError,
)
from amogate.connection.service import AmoConnection
from amogate.settings import Settings
from amogate.storage.db import Database
from tests.support.gateway import Harness, connected_gateway


async def _get_account(amo: AmoConnection) -> None:
    await (await amo.client()).get_account()


async def _budget(h: Harness) -> tuple[float, float, int, int]:
    state = await h.amo.limiter.state()
    assert state is not None
    now = time.time()
    return (state.paused_until - now, state.blocked_until - now, state.total_429, state.total_403)


@pytest.mark.parametrize("mode", ["429", "html429"])
async def test_a_429_pauses_the_shared_budget(settings: Settings, mode: str) -> None:
    async with connected_gateway(settings) as h:
        await h.fault(mode, 30, path_prefix="/api/v4/account")

        with pytest.raises(AmoRateLimitedError):
            await _get_account(h.amo)

        paused_for, blocked_for, total_429, _ = await _budget(h)
        assert paused_for > 0
        assert blocked_for <= 0
        assert total_429 >= 1
        # Another process sharing the database waits for the same pause (or, with a wait
        # limit, refuses at once without calling amoCRM).
        other_db = Database(h.amo.settings.database_url)
        other = AmoConnection.create(h.amo.settings, other_db, transport=h.amo.transport)
        try:
            seen = len(await h.requests("/api/v4/"))
            with pytest.raises(AmoRateLimitedError):
                await other.limiter.with_max_wait(0.0).acquire()
            assert len(await h.requests("/api/v4/")) == seen
        finally:
            await other.stop()
            await other_db.dispose()


async def test_a_403_stops_calls_from_every_process_for_a_cool_down(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings) as h:
        await h.fault("403", 5, path_prefix="/api/v4/")

        with pytest.raises(AmoBlockedError):
            await _get_account(h.amo)
        await h.clear_faults()
        seen = len(await h.requests("/api/v4/"))
        other_db = Database(h.amo.settings.database_url)
        other = AmoConnection.create(h.amo.settings, other_db, transport=h.amo.transport)
        try:
            with pytest.raises(AmoBlockedError):
                await _get_account(other)
        finally:
            await other.stop()
            await other_db.dispose()
        response = await h.gateway.get("/api/v1/info/account?refresh=true", headers=api_headers)
        diagnostics = await h.gateway.get("/api/v1/diagnostics/token-status", headers=api_headers)

        _, blocked_for, _, total_403 = await _budget(h)
        assert blocked_for > 500
        assert total_403 == 1
        assert len(await h.requests("/api/v4/")) == seen  # nobody called amoCRM again
        assert response.status_code == 503
        assert int(response.headers["Retry-After"]) > 500
        assert diagnostics.json()["data"]["blocked_total"] == 1
        assert diagnostics.json()["data"]["blocked_until"] is not None


@pytest.mark.parametrize(
    ("mode", "error"), [("500", AmoTransientError), ("down", AmoUnavailableError)]
)
async def test_server_errors_and_dead_connections_are_unavailable(
    settings: Settings, api_headers: dict[str, str], mode: str, error: type[Exception]
) -> None:
    async with connected_gateway(settings) as h:
        await h.fault(mode, 30, path_prefix="/api/v4/")

        with pytest.raises(error):
            await _get_account(h.amo)
        response = await h.gateway.get("/api/v1/info/account?refresh=true", headers=api_headers)

        assert response.status_code == 503
        assert response.json()["error"] == "amoCRM is unavailable"
        _, blocked_for, total_429, total_403 = await _budget(h)
        assert (total_429, total_403) == (0, 0)  # not mistaken for a rate limit or a block
        assert blocked_for <= 0


async def test_a_hung_amocrm_is_a_timeout(settings: Settings) -> None:
    async with connected_gateway(settings) as h:
        await h.fault("timeout", 30, path_prefix="/api/v4/")
        client = AmoClient(
            await h.amo.api_base(),
            auth=BearerAuth(h.amo.tokens),
            limiter=h.amo.limiter,
            transport=h.amo.transport,
            timeout=httpx.Timeout(0.3),
        )
        try:
            with pytest.raises(AmoTimeoutError):
                await client.get_account()
        finally:
            await client.aclose()
            await h.clear_faults()

        _, _, total_429, total_403 = await _budget(h)
        assert (total_429, total_403) == (0, 0)


async def test_diagnostics_and_config_never_show_a_secret(
    settings_factory: Callable[..., Settings], api_headers: dict[str, str]
) -> None:
    settings = settings_factory(admin_password="admin-password-123456")
    async with connected_gateway(settings) as h:
        row = await h.amo.tokens.status()
        assert row is not None
        responses = [
            await h.gateway.get("/api/v1/diagnostics/token-status", headers=api_headers),
            await h.gateway.get("/api/v1/diagnostics/config", headers=api_headers),
            await h.gateway.get("/oauth/status"),
        ]

        secrets = [
            "sandbox-client-secret",
            api_headers["X-API-KEY"],
            "admin-password-123456",
            row.access_token,
            row.refresh_token,
        ]
        for response in responses:
            assert response.status_code == 200
            for secret in secrets:
                assert secret
                assert secret not in response.text
        token_status, config = responses[0].json()["data"], responses[1].json()["data"]
        assert token_status["status"] == "authorized"
        assert token_status["access_token_valid"] is True
        assert token_status["has_refresh_token"] is True
        assert config["amo_client_secret_set"] is True
        assert config["admin_page_enabled"] is True


async def test_diagnostics_need_the_admin_key(settings: Settings) -> None:
    async with connected_gateway(settings) as h:
        response = await h.gateway.get("/api/v1/diagnostics/token-status")

        assert response.status_code == 401
