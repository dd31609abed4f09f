"""Long-lived tokens (private integrations) and the original gateway's tokens.json."""

from __future__ import annotations

import json
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
from amogate.settings import Settings
from amogate.storage import accounts
from tests.connection.support import oauth_stats
from tests.support.gateway import SANDBOX_URL, connected_gateway

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
            # A later file (or a restart) never overwrites what the database holds.
            tokens_file.write_text(json.dumps({"access_token": "a", "refresh_token": "b"}))
            await h.amo.start(keeper=False)
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
    events = [entry["event"] for entry in logs]
    assert events.count("oauth.tokens_file.imported") == 1
    assert "oauth.tokens_file.skipped" in events
    assert not any(pair["refresh_token"] in json.dumps(entry, default=str) for entry in logs)


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
