"""Refreshing the token pair: before expiry, once on a 401, one refresh for many callers, a
revoked refresh token stops calls instead of retrying forever, and a failed refresh never
loses the stored tokens."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from amogate.amocrm.errors import AmoAuthError, AmoTransientError
from amogate.app_state import state_of
from amogate.connection.service import AmoConnection
from amogate.settings import Settings
from amogate.storage import accounts
from amogate.storage.db import Database
from amogate.storage.tables import amo_accounts
from tests.connection.support import FakeClock, oauth_stats, presented_refresh_tokens, statuses
from tests.ops.support import migrated
from tests.support.gateway import Harness, connected_gateway


async def _stored(h: Harness) -> accounts.AccountRow:
    row = await h.amo.tokens.status()
    assert row is not None
    return row


async def _account_name(h: Harness) -> str:
    account = await (await h.amo.client()).get_account()
    return str(account["name"])


async def test_a_token_near_expiry_is_refreshed_before_the_call(settings: Settings) -> None:
    async with connected_gateway(settings) as h:
        before = await _stored(h)
        clock = FakeClock()
        h.amo.tokens.clock = clock
        assert before.access_expires_at is not None
        clock.now = before.access_expires_at

        assert await _account_name(h)

        after = await _stored(h)
        assert (await oauth_stats(h))["refreshes_ok"] == 1
        assert after.refresh_token != before.refresh_token
        assert after.access_token != before.access_token
        assert after.refreshed_at == clock.now
        assert 401 not in await statuses(h, "/api/v4/account")


async def test_a_401_refreshes_once_and_repeats_the_call(settings: Settings) -> None:
    async with connected_gateway(settings) as h:
        before = await _stored(h)
        await h.sandbox.post("/_sandbox/expire-tokens", json={})

        assert await _account_name(h)

        after = await _stored(h)
        assert (await oauth_stats(h))["refreshes_ok"] == 1
        assert after.refresh_token != before.refresh_token
        assert (await statuses(h, "/api/v4/account"))[-2:] == [401, 200]


async def test_each_refresh_keeps_the_new_refresh_token_for_the_next_one(
    settings: Settings,
) -> None:
    async with connected_gateway(settings) as h:
        first = await _stored(h)
        for _ in range(2):
            await h.sandbox.post("/_sandbox/expire-tokens", json={})
            assert await _account_name(h)
        last = await _stored(h)

        presented = await presented_refresh_tokens(h)
        assert (await oauth_stats(h))["refreshes_ok"] == 2
        assert presented[0] == first.refresh_token
        assert presented[1] not in (None, "None", first.refresh_token)
        assert last.refresh_token is not None
        assert last.refresh_token not in presented


async def test_many_concurrent_calls_share_one_refresh(settings: Settings) -> None:
    async with connected_gateway(settings) as h:
        await _account_name(h)
        await h.sandbox.post("/_sandbox/expire-tokens", json={})
        client = await h.amo.client()

        results = await asyncio.gather(*(client.get_account() for _ in range(20)))

        stats = await oauth_stats(h)
        assert all(r["id"] for r in results)
        assert stats["refreshes_ok"] == 1
        assert stats["revoked_refresh_presented"] == 0
        assert stats["refresh_reused_in_grace"] == 0
        tokens = await presented_refresh_tokens(h)
        assert len(tokens) == len(set(tokens)) == 1


async def test_a_revoked_refresh_token_asks_for_reauthorization_and_calls_fail_fast(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings) as h:
        stale = await _stored(h)
        await h.amo.tokens.refresh_now()
        await _account_name(h)  # the new pair is used: the old refresh token is now revoked
        # An old copy of the tokens comes back (a restored backup, a second installation).
        async with h.amo.database.transaction() as conn:
            assert stale.access_token
            assert stale.refresh_token
            await accounts.save_tokens(
                conn,
                "default",
                access_token=stale.access_token,
                refresh_token=stale.refresh_token,
                expires_at=stale.access_expires_at,
                kind=accounts.OAUTH,
                now=stale.updated_at,
            )
        h.amo.tokens.forget_cache()

        with pytest.raises(AmoAuthError):
            await _account_name(h)

        row = await _stored(h)
        assert row.state == accounts.NEEDS_REAUTHORIZATION
        assert row.state_reason == "Token has been revoked"
        assert row.refresh_token == stale.refresh_token  # kept, not deleted
        assert row.access_token == stale.access_token
        calls_before = len(await h.requests())
        started = time.perf_counter()
        response = await h.gateway.get("/api/v1/info/account?refresh=true", headers=api_headers)
        again = await h.gateway.get("/api/v1/info/account?refresh=true", headers=api_headers)
        elapsed = time.perf_counter() - started
        status = (await h.gateway.get("/oauth/status")).json()["data"]
        assert response.status_code == again.status_code == 503
        assert "reauthoriz" in response.json()["error"]
        assert elapsed < 2
        assert len(await h.requests()) == calls_before  # amoCRM was not called again
        assert status["state"] == "needs_reauthorization"
        assert status["status"] == "not_authorized"
        assert (await oauth_stats(h))["revoked_refresh_presented"] == 1


async def test_reconnecting_after_reauthorization_is_picked_up_without_a_restart(
    settings: Settings,
) -> None:
    async with connected_gateway(settings) as h:
        await h.sandbox.post("/_sandbox/reset", json={"tokens": True})
        with pytest.raises(AmoAuthError):
            await _account_name(h)
        assert (await _stored(h)).state == accounts.NEEDS_REAUTHORIZATION

        # Reconnected elsewhere (another process, `amogate auth exchange`), behind our back.
        from amogate.connection import connect
        from amogate.connection.service import AmoConnection

        other = AmoConnection.create(h.amo.settings, h.amo.database, transport=h.amo.transport)
        try:
            code = (await h.sandbox.post("/_sandbox/authorize", json={})).json()["code"]
            await connect.exchange(other, code, "sandbox.test")
        finally:
            await other.stop()

        assert await _account_name(h)
        assert (await _stored(h)).state == accounts.CONNECTED


@pytest.mark.parametrize("mode", ["500", "down"])
async def test_a_transient_failure_during_refresh_keeps_the_tokens_and_the_state(
    settings: Settings, mode: str
) -> None:
    async with connected_gateway(settings) as h:
        before = await _stored(h)
        await h.fault(mode, 30, path_prefix="/oauth2/")
        await h.sandbox.post("/_sandbox/expire-tokens", json={})

        with pytest.raises(AmoTransientError):
            await _account_name(h)

        during = await _stored(h)
        assert during.state == accounts.CONNECTED
        assert during.access_token == before.access_token
        assert during.refresh_token == before.refresh_token
        await h.clear_faults()
        assert await _account_name(h)
        after = await _stored(h)
        assert after.refresh_token != before.refresh_token
        assert (await oauth_stats(h))["refreshes_ok"] == 1


async def test_a_refresh_that_fails_before_expiry_keeps_using_the_current_token(
    settings: Settings,
) -> None:
    async with connected_gateway(settings) as h:
        before = await _stored(h)
        assert before.access_expires_at is not None
        clock = FakeClock()
        h.amo.tokens.clock = clock
        clock.now = before.access_expires_at - h.amo.tokens.refresh_margin / 2
        await h.fault("500", 30, path_prefix="/oauth2/")

        assert await _account_name(h)

        after = await _stored(h)
        assert after.access_token == before.access_token
        assert after.state == accounts.CONNECTED
        assert len(await h.requests("/oauth2/access_token")) >= 2  # exchange + the failed try


@pytest.mark.postgres
@pytest.mark.parametrize("trigger", ["401", "expiry"])
async def test_two_processes_refreshing_at_once_on_postgresql_present_one_refresh_token(
    settings: Settings, postgres_url: str, trigger: str
) -> None:
    """Two engines on one PostgreSQL database are two gateway processes. amoCRM's token
    endpoint answers slowly, so both refreshes are in flight together: only the row lock
    (`SELECT ... FOR UPDATE`) keeps the second from presenting the same refresh token, and the
    second then uses the first one's tokens instead of refreshing again."""
    await migrated(postgres_url)
    async with connected_gateway(settings, database_url=postgres_url) as h:
        other_db = Database(postgres_url)
        other = AmoConnection.create(h.amo.settings, other_db, transport=h.amo.transport)
        try:
            old = await h.amo.tokens.access_token()
            await h.fault("slow", 30, path_prefix="/oauth2/", delay_s=1.0)
            if trigger == "401":
                calls = [m.tokens.refresh_after_401(old) for m in (h.amo, other)]
            else:  # both find the token about to expire
                async with state_of(h.app).running().database.transaction() as conn:
                    await conn.execute(
                        update(amo_accounts).values(access_expires_at=datetime.now(UTC))
                    )
                for manager in (h.amo.tokens, other.tokens):
                    manager.forget_cache()
                calls = [m.tokens.access_token() for m in (h.amo, other)]
            tokens = await asyncio.gather(*calls)
        finally:
            await h.clear_faults()
            await other.stop()
            await other_db.dispose()

        presented = await presented_refresh_tokens(h)
        assert (len(presented), len(set(presented))) == (1, 1), "a refresh token went twice"
        stats = await oauth_stats(h)
        assert (stats["refreshes_ok"], stats["refresh_reused_in_grace"]) == (1, 0)
        assert tokens[0] == tokens[1] == (await _stored(h)).access_token != old
