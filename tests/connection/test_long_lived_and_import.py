"""Long-lived tokens (private integrations) and the original gateway's tokens.json."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import structlog

from amogate.amocrm.errors import AmoAuthError
from amogate.amocrm.sandbox.config import SandboxConfig
from amogate.amocrm.sandbox.tokens import make_long_lived_token
from amogate.amocrm.sandbox.transport import SandboxTransport
from amogate.app import create_app
from amogate.connection.tokens import NotConnected
from amogate.settings import Settings
from amogate.storage import accounts
from tests.connection.support import oauth_stats
from tests.support.gateway import SANDBOX_URL, connected_gateway, running_amo, sandbox_settings

MONTH_S = 30 * 86400


async def test_a_long_lived_token_is_used_as_is_and_never_refreshed(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    issued = time.time()
    config = SandboxConfig(public_url=SANDBOX_URL, rate_limit=0)
    token = make_long_lived_token(config, issued, ttl=MONTH_S)
    config = SandboxConfig(public_url=SANDBOX_URL, rate_limit=0, long_lived_token=token)
    async with connected_gateway(
        settings, sandbox_config=config, connect_account=False, amo_long_lived_token=token
    ) as h:
        account = await (await h.amo.client()).get_account()
        status = await h.gateway.get("/oauth/status")
        diagnostics = await h.gateway.get("/api/v1/diagnostics/token-status", headers=api_headers)
        await h.sandbox.post("/_sandbox/expire-tokens", json={"include_long_lived": True})
        with pytest.raises(AmoAuthError):
            await (await h.amo.client()).get_account()

        expected = datetime.fromtimestamp(int(issued) + MONTH_S, tz=UTC).isoformat()
        assert account["id"]
        for data in (status.json()["data"], diagnostics.json()["data"]):
            assert data["token_kind"] == "long_lived"
            assert data["access_token_expires_at"] == expected
            assert data["has_refresh_token"] is False
        assert token not in status.text
        assert token not in diagnostics.text
        assert await h.requests("/oauth2/") == []  # never refreshed, even after a 401
        assert (await oauth_stats(h))["refreshes_ok"] == 0


async def _sandbox_pair(sandbox: httpx.AsyncClient) -> dict[str, str]:
    code = (await sandbox.post("/_sandbox/authorize", json={})).json()
    response = await sandbox.post(
        "/oauth2/access_token",
        json={
            "client_id": "sandbox-client-id",
            "client_secret": "sandbox-client-secret",
            "grant_type": "authorization_code",
            "code": code["code"],
            "redirect_uri": code["redirect_uri"],
        },
    )
    pair: dict[str, str] = response.json()
    return pair


@pytest.mark.parametrize("expires_at", ["unix", "iso"])
async def test_the_original_gateways_tokens_file_is_imported_once(
    settings_factory: Callable[..., Settings], tmp_path: Path, expires_at: str
) -> None:
    tokens_file = tmp_path / "old-gateway" / "tokens.json"
    tokens_file.parent.mkdir()
    settings = settings_factory(token_storage_path=tokens_file)
    config = SandboxConfig(public_url=SANDBOX_URL, rate_limit=0)
    async with connected_gateway(settings, sandbox_config=config, connect_account=False) as h:
        pair = await _sandbox_pair(h.sandbox)
        expiry = int(time.time()) + 3600
        tokens_file.write_text(
            json.dumps(
                {
                    "access_token": pair["access_token"],
                    "refresh_token": pair["refresh_token"],
                    "expires_at": expiry
                    if expires_at == "unix"
                    else datetime.fromtimestamp(expiry, tz=UTC).isoformat(),
                }
            )
        )
        with structlog.testing.capture_logs() as logs:
            await h.amo.start(keeper=False)
            imported = await h.amo.tokens.status()
            account = await (await h.amo.client()).get_account()
            await h.amo.start(keeper=False)  # a restart with the same file changes nothing
            after = await h.amo.tokens.status()

    assert imported is not None
    assert imported.access_token == pair["access_token"]
    assert imported.refresh_token == pair["refresh_token"]
    assert imported.state == accounts.CONNECTED
    assert imported.access_expires_at == datetime.fromtimestamp(expiry, tz=UTC)
    assert imported.refreshed_at is None  # its age is unknown: the keeper refreshes it first
    assert account["id"]
    assert after is not None
    assert after.access_token == pair["access_token"]
    events = [(entry["event"], entry.get("reason")) for entry in logs]
    assert events.count(("oauth.tokens_file.imported", "the database holds no token")) == 1
    assert ("oauth.tokens_file.skipped", "the database holds this pair already") in events
    assert not any(pair["refresh_token"] in json.dumps(entry, default=str) for entry in logs)


def write_pair(path: Path, pair: dict[str, str], *, mtime: float | None = None) -> None:
    """A tokens.json as the original README tells its users to write it."""
    expires = int(time.time()) + int(pair.get("expires_in", 86400))
    body = {k: pair[k] for k in ("access_token", "refresh_token")} | {"expires_at": expires}
    path.write_text(json.dumps(body, indent=4))
    if mtime is not None:
        os.utime(path, (mtime, mtime))


async def test_a_fresh_tokens_file_with_another_pair_reauthorizes_at_the_next_start(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """The original's re-authorization: get a new pair, write it to tokens.json, restart."""
    tokens_file = tmp_path / "tokens.json"
    config = SandboxConfig(public_url=SANDBOX_URL, rate_limit=0)
    settings = settings_factory(token_storage_path=tokens_file)
    async with connected_gateway(settings, sandbox_config=config) as h:  # connected by OAuth
        connected = await h.amo.tokens.status()
        # amoCRM forgot the integration's tokens; the gateway needs reauthorization.
        await h.sandbox.post("/_sandbox/reset", json={"tokens": True})
        with pytest.raises(AmoAuthError):
            await (await h.amo.client()).get_account()
        fresh = await _sandbox_pair(h.sandbox)
        write_pair(tokens_file, fresh)
        with structlog.testing.capture_logs() as logs:
            assert await h.amo.tokens.import_token_file(tokens_file)  # what a restart does
        row = await h.amo.tokens.status()
        account = await (await h.amo.client()).get_account()
        # The next start sees the pair it imported and leaves the database alone.
        assert not await h.amo.tokens.import_token_file(tokens_file)

    assert connected is not None
    assert row is not None
    assert row.access_token == fresh["access_token"] != connected.access_token
    assert row.refresh_token == fresh["refresh_token"]
    assert row.state == accounts.CONNECTED
    assert account["id"]
    [line] = [entry for entry in logs if entry["event"] == "oauth.tokens_file.imported"]
    assert line["reason"] == (
        "the file is newer than the pair in the database and holds another pair"
    )


async def test_an_old_or_copied_back_tokens_file_never_replaces_a_newer_pair(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    tokens_file = tmp_path / "tokens.json"
    config = SandboxConfig(public_url=SANDBOX_URL, rate_limit=0)
    settings = settings_factory(token_storage_path=tokens_file)
    async with connected_gateway(settings, sandbox_config=config, connect_account=False) as h:
        first = await _sandbox_pair(h.sandbox)
        write_pair(tokens_file, first, mtime=time.time() - 60)
        assert await h.amo.tokens.import_token_file(tokens_file)
        refreshed = await h.amo.tokens.refresh_now(reason="test")  # the file is now stale
        with structlog.testing.capture_logs() as logs:
            # a file written before the refresh, with a pair never seen
            write_pair(tokens_file, await _sandbox_pair(h.sandbox), mtime=time.time() - 30)
            assert not await h.amo.tokens.import_token_file(tokens_file)
            # the first pair copied back over it with a new date (a restored backup, say)
            write_pair(tokens_file, first)
            assert not await h.amo.tokens.import_token_file(tokens_file)
        row = await h.amo.tokens.status()
        account = await (await h.amo.client()).get_account()

    assert row is not None
    assert row.refresh_token == refreshed.refresh_token != first["refresh_token"]
    assert account["id"]
    assert [entry["reason"] for entry in logs if entry["event"] == "oauth.tokens_file.skipped"] == [
        "the file is older than the pair in the database",
        "this pair was imported before and has been refreshed since",
    ]


async def test_export_writes_the_original_format_that_the_import_reads_back(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    exported = tmp_path / "rollback" / "tokens.json"
    config = SandboxConfig(public_url=SANDBOX_URL, rate_limit=0)
    first = settings_factory(token_storage_path=tmp_path / "unused.json")
    async with connected_gateway(first, sandbox_config=config) as h:
        row = await h.amo.tokens.export_pair(exported)
        content = json.loads(exported.read_text())
        assert set(content) == {"access_token", "refresh_token", "expires_at"}
        assert content["access_token"] == row.access_token
        assert content["refresh_token"] == row.refresh_token
        assert row.access_expires_at is not None
        assert content["expires_at"] == int(row.access_expires_at.timestamp())
        assert exported.stat().st_mode & 0o777 == 0o600
        # A second gateway (another database) starts from the exported file and works.
        second = settings_factory(
            token_storage_path=exported, database_url=f"sqlite:///{tmp_path / 'second.db'}"
        )
        app = create_app(
            sandbox_settings(second),
            amo_transport=SandboxTransport(h.sandbox_app),
            background=False,
        )
        async with app.router.lifespan_context(app):
            imported = await running_amo(app).tokens.status()
            account = await (await running_amo(app).client()).get_account()
    assert imported is not None
    assert imported.refresh_token == row.refresh_token
    assert account["id"]


async def test_export_without_a_refreshable_pair_says_why(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    target = tmp_path / "tokens.json"
    async with connected_gateway(settings_factory(), connect_account=False) as h:
        with pytest.raises(NotConnected) as caught:
            await h.amo.tokens.export_pair(target)
    assert caught.value.detail == "amoCRM is not connected: there is no token pair to export"
    assert not target.exists()


async def test_an_unreadable_tokens_file_is_ignored(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    tokens_file = tmp_path / "tokens.json"
    tokens_file.write_text("{not json")
    async with connected_gateway(
        settings_factory(token_storage_path=tokens_file), connect_account=False
    ) as h:
        status = (await h.gateway.get("/oauth/status")).json()["data"]

    assert status["has_token"] is False
