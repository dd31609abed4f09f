"""The keeper refreshes a pair before amoCRM's 3-month refresh-token lifetime can run out, skips
a fresh one, and two keepers (two processes) racing refresh only once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from amogate.connection.keeper import keep_once
from amogate.connection.service import AmoConnection
from amogate.settings import Settings
from amogate.storage import migrate
from amogate.storage.db import Database
from tests.connection.support import FakeClock, oauth_stats, presented_refresh_tokens
from tests.support.gateway import connected_gateway

WEEK = timedelta(days=7)


async def test_the_keeper_skips_a_fresh_pair_and_refreshes_an_old_one(
    settings: Settings,
) -> None:
    async with connected_gateway(settings) as h:
        before = await h.amo.tokens.status()
        assert before is not None
        clock = FakeClock()
        h.amo.tokens.clock = clock

        clock.advance(days=6)
        skipped = await keep_once(h.amo.tokens, WEEK)
        clock.advance(days=2)
        refreshed = await keep_once(h.amo.tokens, WEEK)
        again = await keep_once(h.amo.tokens, WEEK)

        after = await h.amo.tokens.status()
        assert after is not None
        assert (skipped, refreshed, again) == (False, True, False)
        assert after.refresh_token != before.refresh_token
        assert after.refreshed_at == clock.now
        assert (await oauth_stats(h))["refreshes_ok"] == 1


async def test_two_keepers_racing_refresh_once(
    settings_factory: Callable[..., Settings], database_url: str
) -> None:
    settings = settings_factory(database_url=database_url)
    if not database_url.startswith("sqlite"):
        db = Database(database_url)
        await migrate.upgrade(db)
        await db.dispose()
    async with connected_gateway(settings) as h:
        # A second process: its own engine and token manager on the same database.
        other_db = Database(database_url)
        other = AmoConnection.create(h.amo.settings, other_db, transport=h.amo.transport)
        try:
            clock = FakeClock()
            clock.advance(days=8)
            h.amo.tokens.clock = clock
            other.tokens.clock = clock

            results = await asyncio.gather(
                keep_once(h.amo.tokens, WEEK), keep_once(other.tokens, WEEK)
            )
        finally:
            await other.stop()
            await other_db.dispose()

        assert sorted(results) == [False, True]
        assert (await oauth_stats(h))["refreshes_ok"] == 1
        assert len(await presented_refresh_tokens(h)) == 1
        assert await (await h.amo.client()).get_account()


async def test_a_long_lived_token_is_left_to_itself(settings: Settings) -> None:
    async with connected_gateway(settings) as h:
        await h.amo.tokens.use_long_lived("not-a-jwt-but-long-lived", None)
        clock = FakeClock()
        clock.advance(days=365)
        h.amo.tokens.clock = clock

        assert await keep_once(h.amo.tokens, WEEK) is False
        assert len(await h.requests("/oauth2/access_token")) == 1  # the initial exchange only
        assert (await oauth_stats(h))["refreshes_ok"] == 0
