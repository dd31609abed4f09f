"""The admin page against an outsider: forged cookies, short passwords, password guessing, and
nothing written to the database by anyone who has not signed in."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import httpx
import pytest

from amogate.access.sessions import LOGIN_COOKIE, SESSION_COOKIE
from tests.conftest import TEST_API_KEY
from tests.security.support import ADMIN_PASSWORD, BROWSER_ACCEPT, JSON_ACCEPT, deployment
from tests.support.processes import free_port, gateway_env, run_amogate
from tests.web.helpers import csrf_of

pytestmark = pytest.mark.slow


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _signed_with_api_key(body: dict[str, object], password: str) -> str:
    """A cookie signed the way a key derived from API_KEY and ADMIN_PASSWORD would sign it:
    what someone holding API_KEY could mint once they guessed the password offline."""
    key = hmac.new(
        TEST_API_KEY.encode(), b"amogate-admin-session\x00" + password.encode(), hashlib.sha256
    ).digest()
    payload = _b64(json.dumps(body, separators=(",", ":")).encode())
    signature = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{signature}"


def test_a_cookie_forged_with_api_key_and_the_right_password_is_rejected(tmp_path: Path) -> None:
    now = int(time.time())
    with deployment(tmp_path) as d:
        login_page = httpx.get(f"{d.url}/admin/login")
        anonymous = login_page.cookies[LOGIN_COOKIE]
        forgeries = [
            _signed_with_api_key({"a": True, "c": "x", "t": now}, ADMIN_PASSWORD),
            *(
                _signed_with_api_key({"c": "x", "t": now, "g": g}, ADMIN_PASSWORD)
                for g in range(0, 4)
            ),
        ]
        for cookie in forgeries:
            page = httpx.get(
                f"{d.url}/admin", cookies={SESSION_COOKIE: cookie}, follow_redirects=False
            )
            assert page.status_code == 303
            assert page.headers["location"].startswith("/admin/login")
            connect = httpx.get(
                f"{d.url}/oauth/authorize", cookies={SESSION_COOKIE: cookie}, headers=JSON_ACCEPT
            )
            assert connect.status_code == 401

    # The sign-in page's cookie is no oracle for an offline guess: it is a bare random token,
    # nothing in it is signed (with any key), so there is no signature to test guesses on.
    assert "." not in anonymous
    assert len(anonymous) >= 32


def test_a_short_admin_password_refuses_to_start(tmp_path: Path) -> None:
    env = gateway_env(tmp_path, ADMIN_PASSWORD="short-pass1")  # 11 characters
    started = run_amogate(tmp_path, env, "serve", "--port", str(free_port()))

    assert started.returncode == 2
    lines = started.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "ADMIN_PASSWORD" in lines[0]
    assert "12" in lines[0]


def test_password_guessing_is_stopped_after_five_tries_a_minute(tmp_path: Path) -> None:
    with deployment(tmp_path) as d, httpx.Client(base_url=d.url, timeout=15) as client:
        statuses = []
        for guess in ["123456", "password", "admin", "qwerty", "amogate", ADMIN_PASSWORD]:
            page = client.get("/admin/login")
            answer = client.post(
                "/admin/login", data={"csrf": csrf_of(page.text), "password": guess}
            )
            statuses.append(answer.status_code)

        assert statuses == [401, 401, 401, 401, 401, 429]
        assert 1 <= int(answer.headers["retry-after"]) <= 60
        assert SESSION_COOKIE not in client.cookies


def test_an_outsider_writes_nothing_to_the_database(tmp_path: Path) -> None:
    with deployment(tmp_path) as d:
        assert d.connect().status_code == 200
        before = d.table_counts()
        with httpx.Client(base_url=d.url, timeout=15) as outsider:
            for _ in range(3):
                outsider.get("/oauth/authorize", headers=BROWSER_ACCEPT)
                outsider.get("/oauth/authorize", headers=JSON_ACCEPT)
                outsider.get("/oauth/callback", params={"state": "s" * 40, "code": "c"})
                outsider.get("/oauth/status")
                outsider.get("/admin")
                outsider.get("/admin/login")
                outsider.get("/admin/replace-account")
                outsider.post("/admin/logout", data={"csrf": "x"})
                outsider.post("/admin/replace-account", data={"csrf": "x"})
                outsider.get("/metrics")
                outsider.get("/api/v1/info/account", headers={"X-API-KEY": "k" * 30})
                outsider.post("/api/v1/leads/unsorted", json={}, headers={"X-API-KEY": "k" * 30})
                outsider.get("/health/ready")

        assert d.table_counts() == before
