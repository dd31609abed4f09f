"""`amogate auth ...` as real processes against a real sandbox process: connecting a server
that has no browser, checking and refreshing the connection."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from amogate.amocrm.sandbox.runner import SandboxServer
from amogate.connection.tokens import utcnow
from amogate.storage import accounts
from amogate.storage.db import Database
from tests.support.processes import gateway_env

pytestmark = pytest.mark.slow


class Cli:
    def __init__(self, tmp_path: Path, sandbox: SandboxServer) -> None:
        self.tmp_path = tmp_path
        self.sandbox = sandbox
        self.database_url = f"sqlite:///{tmp_path / 'gateway.db'}"
        self.env = gateway_env(
            tmp_path,
            DATABASE_URL=self.database_url,
            AMO_BASE_URL=sandbox.url,
            AMO_CLIENT_ID=sandbox.config.client_id,
            AMO_CLIENT_SECRET=sandbox.config.client_secret,
            AMO_REDIRECT_URI=sandbox.config.redirect_uri,
        )

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "amogate", "auth", *args],
            env=self.env,
            cwd=self.tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def code(self) -> str:
        code: str = httpx.post(f"{self.sandbox.url}/_sandbox/authorize", json={}).json()["code"]
        return code

    def oauth(self) -> dict[str, int]:
        stats: dict[str, Any] = httpx.get(f"{self.sandbox.url}/_sandbox/stats").json()
        oauth: dict[str, int] = stats["oauth"]
        return oauth

    def token_calls(self) -> int:
        log = httpx.get(
            f"{self.sandbox.url}/_sandbox/requests", params={"path_prefix": "/oauth2/"}
        ).json()
        return len(log)

    def row(self) -> accounts.AccountRow:
        async def read() -> accounts.AccountRow | None:
            db = Database(self.database_url)
            try:
                async with db.read() as conn:
                    return await accounts.get(conn)
            finally:
                await db.dispose()

        row = asyncio.run(read())
        assert row is not None
        return row


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    with SandboxServer(rate_limit=0) as sandbox:
        yield Cli(tmp_path, sandbox)


def _facts(output: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in output.splitlines())


def test_a_server_without_a_browser_is_connected_checked_and_refreshed(cli: Cli) -> None:
    before = cli("status")
    assert before.returncode == 1
    assert _facts(before.stdout)["connected"] == "no"
    assert "amogate auth url" in _facts(before.stdout)["next step"]

    exchanged = cli("exchange", cli.code())
    assert exchanged.returncode == 0, exchanged.stderr
    assert exchanged.stdout.startswith("connected to ")
    connected = cli.row()

    status = cli("status")
    facts = _facts(status.stdout)
    assert status.returncode == 0, status.stderr
    assert facts["connected"] == "yes"
    assert facts["state"] == "connected"
    assert facts["token"] == "oauth"
    assert re.fullmatch(r"valid until \d{4}-\d\d-\d\d \d\d:\d\d UTC", facts["access token"])
    assert facts["refresh token"] == "yes"
    assert "reason" not in facts
    assert connected.access_token
    assert connected.refresh_token
    for secret in (connected.access_token, connected.refresh_token, "sandbox-client-secret"):
        assert secret not in status.stdout + status.stderr
        assert secret not in exchanged.stdout + exchanged.stderr

    refreshed = cli("refresh")
    assert refreshed.returncode == 0, refreshed.stderr
    assert refreshed.stdout.startswith("refreshed: access token valid until ")
    after = cli.row()
    assert after.refresh_token != connected.refresh_token
    assert cli.oauth()["refreshes_ok"] == 1
    assert connected.refresh_token not in refreshed.stdout + refreshed.stderr


def test_export_writes_tokens_json_for_the_original_gateway_and_refuses_without_a_pair(
    cli: Cli,
) -> None:
    target = cli.tmp_path / "php-gateway" / "storage" / "tokens.json"
    refused = cli("export", str(target))
    assert refused.returncode == 1
    assert "there is no token pair to export" in refused.stderr
    assert not target.exists()

    assert cli("exchange", cli.code()).returncode == 0
    exported = cli("export", str(target))
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.startswith(f"wrote the token pair to {target} (access token valid ")
    assert "stop every amogate process" in exported.stdout
    row = cli.row()
    content = json.loads(target.read_text())
    assert content == {
        "access_token": row.access_token,
        "refresh_token": row.refresh_token,
        "expires_at": int(row.access_expires_at.timestamp()) if row.access_expires_at else 0,
    }
    assert target.stat().st_mode & 0o777 == 0o600
    assert str(row.refresh_token) not in exported.stdout + exported.stderr
    # The exported pair works with amoCRM as the PHP gateway would use it.
    account = httpx.get(
        f"{cli.sandbox.url}/api/v4/account",
        headers={"Authorization": f"Bearer {content['access_token']}"},
    )
    assert account.status_code == 200


def test_a_rejected_refresh_is_reported_and_status_asks_for_reauthorization(cli: Cli) -> None:
    assert cli("exchange", cli.code()).returncode == 0
    httpx.post(f"{cli.sandbox.url}/_sandbox/reset", json={"tokens": True}).raise_for_status()

    refreshed = cli("refresh")
    status = cli("status")

    assert refreshed.returncode == 1
    assert "reauthorize" in refreshed.stderr
    assert status.returncode == 1
    facts = _facts(status.stdout)
    assert facts["connected"] == "no"
    assert facts["state"] == "needs_reauthorization"
    # Nothing beside "connected: no" may say the token is usable.
    assert facts["access token"] == "not usable until amoCRM is connected again"
    assert "valid" not in status.stdout
    assert "True" not in status.stdout
    assert "False" not in status.stdout
    assert cli.row().refresh_token  # kept


@pytest.mark.parametrize("referer", ["evil.example", "127.0.0.1.evil.com"])
def test_exchange_refuses_an_untrusted_host_before_any_token_call(cli: Cli, referer: str) -> None:
    result = cli("exchange", cli.code(), "--referer", referer)

    assert result.returncode == 1
    assert "Untrusted referer" in result.stderr
    assert cli.token_calls() == 0


def test_exchange_with_a_wrong_secret_says_which_settings_to_check(cli: Cli) -> None:
    cli.env["AMO_CLIENT_SECRET"] = "not-the-integration-secret"
    result = cli("exchange", cli.code())

    assert result.returncode == 1
    assert "check AMO_CLIENT_ID / AMO_CLIENT_SECRET" in result.stderr
    assert "not-the-integration-secret" not in result.stdout + result.stderr


def test_exchange_reports_a_used_code(cli: Cli) -> None:
    code = cli.code()
    assert cli("exchange", code).returncode == 0

    again = cli("exchange", code)

    assert again.returncode == 1
    assert "Authorization code has been revoked" in again.stderr


def test_the_consent_url_carries_a_stored_single_use_state(cli: Cli) -> None:
    result = cli("url")
    assert result.returncode == 0, result.stderr
    url = result.stdout.strip()
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(f"{cli.sandbox.url}/oauth?")
    assert query["client_id"] == [cli.sandbox.config.client_id]

    # Finish in a browser: the consent page's Allow sends the state back to the callback.
    page = httpx.get(url)
    form = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page.text))
    form = {k: unescape(v) for k, v in form.items()} | {"decision": "allow"}
    decided = httpx.post(f"{cli.sandbox.url}/oauth/decide", data=form)
    callback = parse_qs(urlsplit(decided.headers["location"]).query)
    assert callback["state"] == query["state"]

    async def consume_twice() -> list[bool]:
        db = Database(cli.database_url)
        try:
            results = []
            for _ in range(2):
                async with db.transaction() as conn:
                    results.append(
                        await accounts.consume_oauth_state(conn, query["state"][0], utcnow())
                    )
            return results
        finally:
            await db.dispose()

    assert asyncio.run(consume_twice()) == [True, False]
