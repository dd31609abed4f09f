"""Real processes for the attacks: an amoCRM sandbox (or two, for two accounts), a gateway in
front of it with the admin page on, and what an outsider or the operator would do to them.

The gateway's database is SQLite in the test's folder; the tests read it with `sqlite3`
directly, the way an auditor would, never through the gateway's own code.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from amogate.amocrm.sandbox.runner import SandboxServer
from tests.conftest import TEST_API_KEY
from tests.support.processes import running_gateway

ADMIN_PASSWORD = "correct horse battery staple"
REDIRECT_URI = "http://localhost:9095/oauth/callback"
ADMIN_KEY = {"X-API-KEY": TEST_API_KEY}
JSON_ACCEPT = {"Accept": "application/json"}
BROWSER_ACCEPT = {"Accept": "text/html,application/xhtml+xml"}


def gateway_settings(sandbox_url: str, **extra: str) -> dict[str, str]:
    """The environment of a gateway in front of `sandbox_url`, admin page on."""
    return {
        "AMO_BASE_URL": sandbox_url,
        "AMO_CLIENT_ID": "sandbox-client-id",
        "AMO_CLIENT_SECRET": "sandbox-client-secret",
        "AMO_REDIRECT_URI": REDIRECT_URI,
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "LOG_ERRORS": "true",
        "LOG_LEVEL": "INFO",
        **extra,
    }


@dataclass
class Deployment:
    """A running gateway (`url`) in front of a running sandbox; `folder` holds its files."""

    url: str
    sandbox: SandboxServer
    folder: Path

    @property
    def database(self) -> Path:
        return self.folder / "gateway.db"

    @property
    def log(self) -> str:
        return (self.folder / "gateway.log").read_text(encoding="utf-8", errors="replace")

    @property
    def error_log(self) -> Path:
        return self.folder / "error.log"

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with closing(sqlite3.connect(self.database, timeout=30)) as conn:
            return list(conn.execute(sql, params))

    def execute(self, sql: str, *params: Any) -> None:
        with closing(sqlite3.connect(self.database, timeout=30)) as conn, conn:
            conn.execute(sql, params)

    def tokens(self) -> tuple[Any, ...]:
        """The stored connection: (access token, refresh token, base domain, account id)."""
        found = self.rows(
            "SELECT access_token, refresh_token, base_domain, amo_account_id FROM amo_accounts"
        )
        return found[0] if found else (None, None, None, None)

    def table_counts(self) -> dict[str, int]:
        names = [r[0] for r in self.rows("SELECT name FROM sqlite_master WHERE type='table'")]
        return {name: self.rows(f'SELECT count(*) FROM "{name}"')[0][0] for name in names}  # noqa: S608

    def sandbox_calls(self, path_prefix: str, sandbox: SandboxServer | None = None) -> int:
        target = sandbox or self.sandbox
        entries = httpx.get(
            f"{target.url}/_sandbox/requests", params={"path_prefix": path_prefix}, timeout=10
        ).json()
        return len(entries)

    def connect(self, client: httpx.Client | None = None) -> httpx.Response:
        """The operator connects amoCRM: /oauth/authorize with the admin key (the client keeps
        the state cookie), consent in the sandbox, /oauth/callback."""
        with _client(client) as http:
            state = start_consent(http, self.url)
            code = consent_code(self.sandbox, state)
            return http.get(
                f"{self.url}/oauth/callback",
                params={"code": code, "state": state, "referer": self.sandbox_host},
                headers=JSON_ACCEPT,
            )

    @property
    def sandbox_host(self) -> str:
        return urlsplit(self.sandbox.url).netloc

    def send_lead(self, body: dict[str, Any], *, key: str = TEST_API_KEY, **headers: str) -> Any:
        response = httpx.post(
            f"{self.url}/api/v1/leads/unsorted",
            json=body,
            headers={"X-API-KEY": key, **headers},
            timeout=30,
        )
        return response


@contextmanager
def _client(client: httpx.Client | None) -> Iterator[httpx.Client]:
    if client is not None:
        yield client
        return
    with httpx.Client(timeout=15) as fresh:
        yield fresh


def start_consent(http: httpx.Client, gateway_url: str) -> str:
    """/oauth/authorize with the admin key; the state from the consent URL (the state cookie
    stays in `http`)."""
    start = http.get(f"{gateway_url}/oauth/authorize", headers=ADMIN_KEY)
    assert start.status_code == 302, start.text
    return parse_qs(urlsplit(start.headers["location"]).query)["state"][0]


def consent_code(sandbox: SandboxServer, state: str = "x") -> str:
    """The consent in `sandbox` (its control API stands in for the Allow button)."""
    answer = httpx.post(
        f"{sandbox.url}/_sandbox/authorize",
        json={"client_id": "sandbox-client-id", "state": state},
        timeout=10,
    )
    answer.raise_for_status()
    code: str = answer.json()["code"]
    return code


@contextmanager
def deployment(
    tmp_path: Path, *, sandbox_port: int | None = None, **env: str
) -> Iterator[Deployment]:
    """A sandbox (rate limit off) and a gateway in front of it, both real processes."""
    with (
        SandboxServer(rate_limit=0, redirect_uri=REDIRECT_URI, port=sandbox_port) as sandbox,
        running_gateway(tmp_path, environment=gateway_settings(sandbox.url, **env)) as url,
    ):
        yield Deployment(url, sandbox, tmp_path)


def wait_until(condition: Any, *, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


LEAD = {
    "lead": {"name": "Yangi mijoz"},
    "contact": {"name": "Alisher Navoi", "phone": "+998901234567", "email": "alisher@example.uz"},
    "comment": "Mijoz maxsulot haqida so'radi",
}
