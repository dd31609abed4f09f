"""Nobody but the operator can connect the gateway to an amoCRM account.

The attack these close: with no cookie and no key, /oauth/authorize → a code for the attacker's
own account → /oauth/callback?...&referer=attacker.amocrm.ru → "amoCRM connected", the stored
tokens replaced, and every lead from then on in the attacker's CRM. Each test attacks a real
gateway in front of real sandboxes (one per amoCRM account) and checks the stored tokens
afterwards, straight from the database.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from amogate.amocrm.sandbox.runner import SandboxServer
from tests.conftest import TEST_API_KEY
from tests.security.support import (
    ADMIN_KEY,
    ADMIN_PASSWORD,
    BROWSER_ACCEPT,
    JSON_ACCEPT,
    LEAD,
    REDIRECT_URI,
    consent_code,
    deployment,
    start_consent,
    wait_until,
)
from tests.support.processes import gateway_env, run_amogate, running_gateway
from tests.web.helpers import csrf_of

pytestmark = pytest.mark.slow

OTHER_ACCOUNT_ID = 99_000_001


def test_anonymous_authorize_is_refused_and_stores_no_state(tmp_path: Path) -> None:
    with deployment(tmp_path) as d:
        api = httpx.get(f"{d.url}/oauth/authorize", headers=JSON_ACCEPT)
        browser = httpx.get(f"{d.url}/oauth/authorize", headers=BROWSER_ACCEPT)
        wrong_key = httpx.get(f"{d.url}/oauth/authorize", headers={"X-API-KEY": "x" * 24})

        assert api.status_code == 401
        assert api.json() == {
            "success": False,
            "error": "Invalid or missing API key",
            "message": "Please provide valid X-API-KEY header",
        }
        assert browser.status_code == 303
        assert browser.headers["location"] == "/admin/login?next=%2Foauth%2Fauthorize"
        assert wrong_key.status_code == 401
        assert "amogate_oauth" not in api.headers.get("set-cookie", "")
        assert d.table_counts()["oauth_states"] == 0  # nothing written for an outsider


def test_a_leads_key_cannot_start_a_connection(tmp_path: Path) -> None:
    with deployment(tmp_path) as d:
        created = run_amogate(
            tmp_path,
            gateway_env(tmp_path, DATABASE_URL=f"sqlite:///{d.database}"),
            "keys",
            "create",
            "site",
            "--scope",
            "leads:write",
        )
        key = created.stdout.strip().splitlines()[-1].split()[-1]

        response = httpx.get(f"{d.url}/oauth/authorize", headers={"X-API-KEY": key})

        assert response.status_code == 403
        assert d.table_counts()["oauth_states"] == 0


def test_the_admin_session_starts_a_connection_bound_to_its_browser(tmp_path: Path) -> None:
    with deployment(tmp_path) as d, httpx.Client(base_url=d.url, timeout=15) as browser:
        page = browser.get("/admin/login")
        browser.post(
            "/admin/login",
            data={"csrf": csrf_of(page.text), "password": ADMIN_PASSWORD, "next": "/admin"},
        )

        start = browser.get("/oauth/authorize", headers=BROWSER_ACCEPT)

        assert start.status_code == 302
        assert start.headers["location"].startswith(f"{d.sandbox.url}/oauth?")
        cookie = next(
            h for h in start.headers.get_list("set-cookie") if h.startswith("amogate_oauth=")
        )
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "samesite=lax", "path=/"} <= flags


def test_a_callback_with_another_accounts_referer_changes_nothing(tmp_path: Path) -> None:
    with (
        deployment(tmp_path) as d,
        SandboxServer(
            rate_limit=0, redirect_uri=REDIRECT_URI, account_id=OTHER_ACCOUNT_ID
        ) as attacker,
    ):
        assert d.connect().status_code == 200
        before = d.tokens()
        attackers_host = urlsplit(attacker.url).netloc
        for referer in (attackers_host, "attacker.amocrm.ru", "attacker.kommo.com"):
            with httpx.Client(timeout=15) as admin:
                # Even with a state the admin started (and its cookie), a code from another
                # account, claimed to come from another host, goes nowhere.
                state = start_consent(admin, d.url)
                response = admin.get(
                    f"{d.url}/oauth/callback",
                    params={
                        "code": consent_code(attacker, state),
                        "state": state,
                        "referer": referer,
                    },
                    headers=JSON_ACCEPT,
                )
            assert response.status_code == 400, response.text
            assert "referer" in response.json()["error"].lower()

        assert d.tokens() == before
        assert d.sandbox_calls("/oauth2/access_token", attacker) == 0  # no secret sent there
        assert d.sandbox_calls("/oauth2/access_token") == 1  # only the operator's exchange
        delivered = d.send_lead(LEAD)
        assert delivered.status_code == 200, delivered.text
        assert delivered.json()["data"]["status"] == "delivered"
        assert d.sandbox_calls("/api/v4/leads/unsorted/forms") == 1
        assert d.sandbox_calls("/api/v4", attacker) == 0


def test_a_callback_without_the_state_cookie_is_refused(tmp_path: Path) -> None:
    with deployment(tmp_path) as d, httpx.Client(timeout=15) as admin:
        state = start_consent(admin, d.url)
        code = consent_code(d.sandbox, state)
        callback = {"code": code, "state": state, "referer": d.sandbox_host}

        stolen = httpx.get(f"{d.url}/oauth/callback", params=callback, headers=JSON_ACCEPT)
        forged = httpx.get(
            f"{d.url}/oauth/callback",
            params=callback,
            headers=JSON_ACCEPT,
            cookies={"amogate_oauth": "guessed-cookie-value"},
        )

        assert stolen.status_code == 403
        assert forged.status_code == 403
        assert "browser" in stolen.json()["error"]
        assert d.tokens() == (None, None, None, None)
        assert d.sandbox_calls("/oauth2/access_token") == 0
        # The refusals did not burn the admin's state: their own browser still finishes.
        assert admin.get(f"{d.url}/oauth/callback", params=callback).status_code == 200
        assert d.tokens()[3] is not None


def test_a_state_from_amogate_auth_url_needs_no_cookie(tmp_path: Path) -> None:
    with deployment(tmp_path) as d:
        env = gateway_env(
            tmp_path,
            AMO_BASE_URL=d.sandbox.url,
            AMO_CLIENT_ID="sandbox-client-id",
            AMO_CLIENT_SECRET="sandbox-client-secret",
        )
        printed = run_amogate(tmp_path, env, "auth", "url")
        assert printed.returncode == 0, printed.stderr
        state = parse_qs(urlsplit(printed.stdout.strip()).query)["state"][0]

        response = httpx.get(
            f"{d.url}/oauth/callback",
            params={
                "code": consent_code(d.sandbox, state),
                "state": state,
                "referer": d.sandbox_host,
            },
            headers=JSON_ACCEPT,
        )

        assert response.status_code == 200, response.text


def test_another_account_is_not_connected_without_the_admins_confirmation(
    tmp_path: Path,
) -> None:
    with deployment(tmp_path) as d:
        assert d.connect().status_code == 200
        connected = d.tokens()
        port = d.sandbox.port
        d.sandbox.stop()
        # The same host now answers for another account (the operator's AMO_BASE_URL did not
        # change): a code from it is another account's.
        with SandboxServer(
            rate_limit=0, redirect_uri=REDIRECT_URI, port=port, account_id=OTHER_ACCOUNT_ID
        ) as other:
            d.sandbox = other
            refused = d.connect()

            assert refused.status_code == 409, refused.text
            assert refused.json()["details"] == {
                "connected_account_id": connected[3],
                "offered_account_id": OTHER_ACCOUNT_ID,
            }
            assert d.tokens() == connected

            # The browser page offers the confirm step; confirmed there, it connects.
            with httpx.Client(base_url=d.url, timeout=15) as browser:
                page = browser.get("/admin/login")
                browser.post(
                    "/admin/login",
                    data={"csrf": csrf_of(page.text), "password": ADMIN_PASSWORD},
                )
                confirm = browser.get("/admin/replace-account")
                assert confirm.status_code == 200
                go = browser.post("/admin/replace-account", data={"csrf": csrf_of(confirm.text)})
                assert go.status_code == 303
                state = parse_qs(urlsplit(go.headers["location"]).query)["state"][0]
                done = browser.get(
                    "/oauth/callback",
                    params={
                        "code": consent_code(other, state),
                        "state": state,
                        "referer": d.sandbox_host,
                    },
                    headers=JSON_ACCEPT,
                )
            assert done.status_code == 200, done.text
            assert d.tokens()[3] == OTHER_ACCOUNT_ID


def test_the_cli_replaces_the_account_only_with_replace(tmp_path: Path) -> None:
    with deployment(tmp_path) as d:
        assert d.connect().status_code == 200
        connected = d.tokens()
        port = d.sandbox.port
        d.sandbox.stop()
        with SandboxServer(
            rate_limit=0, redirect_uri=REDIRECT_URI, port=port, account_id=OTHER_ACCOUNT_ID
        ) as other:
            env = gateway_env(
                tmp_path,
                AMO_BASE_URL=other.url,
                AMO_CLIENT_ID="sandbox-client-id",
                AMO_CLIENT_SECRET="sandbox-client-secret",
                AMO_REDIRECT_URI=REDIRECT_URI,
            )
            plain = run_amogate(tmp_path, env, "auth", "exchange", consent_code(other))
            assert plain.returncode != 0
            assert "another amoCRM account" in plain.stderr
            assert d.tokens() == connected

            replaced = run_amogate(
                tmp_path, env, "auth", "exchange", consent_code(other), "--replace"
            )
            assert replaced.returncode == 0, replaced.stderr
            assert d.tokens()[3] == OTHER_ACCOUNT_ID


def test_authorize_without_client_credentials_names_the_variable(tmp_path: Path) -> None:
    with SandboxServer(rate_limit=0) as sandbox:
        env = {"AMO_BASE_URL": sandbox.url, "AMO_CLIENT_ID": "sandbox-client-id"}
        with running_gateway(tmp_path, environment=env) as url:
            response = httpx.get(f"{url}/oauth/authorize", headers=ADMIN_KEY)

    assert response.status_code == 400
    assert "AMO_CLIENT_SECRET" in response.json()["error"]


def test_a_connected_gateway_keeps_delivering_after_a_refused_attack(tmp_path: Path) -> None:
    """The whole reproduced attack, end to end, as an outsider would run it."""
    with (
        deployment(tmp_path) as d,
        SandboxServer(
            rate_limit=0, redirect_uri=REDIRECT_URI, account_id=OTHER_ACCOUNT_ID
        ) as attacker,
    ):
        assert d.connect().status_code == 200
        before = d.tokens()
        with httpx.Client(timeout=15) as outsider:
            start = outsider.get(f"{d.url}/oauth/authorize")
            forged = outsider.get(
                f"{d.url}/oauth/callback",
                params={
                    "code": consent_code(attacker),
                    "state": "made-up",
                    "referer": "attacker.amocrm.ru",
                },
            )
        assert start.status_code == 401
        assert forged.status_code == 400
        assert "amoCRM connected" not in forged.text
        assert d.tokens() == before
        accepted = d.send_lead(LEAD, key=TEST_API_KEY)
        assert accepted.status_code == 200
        wait_until(lambda: d.sandbox_calls("/api/v4/leads/unsorted/forms") == 1, what="delivery")
