"""The operator's first hour, through real processes: what the gateway answers, logs and prints
when amoCRM is down, when it comes back or is (re)connected, when the configuration or the port
is wrong, when a browser site is refused, and what /docs needs."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from amogate.amocrm.sandbox.runner import SandboxServer
from tests.support.processes import (
    connect_through_browser_flow,
    free_port,
    gateway_env,
    running_gateway,
    wait_for_http,
)

pytestmark = pytest.mark.slow

API_KEY = "test-admin-key-0123456789"  # what tests.support.processes gives the gateway
HEADERS = {"X-API-KEY": API_KEY}
LEAD = {
    "lead": {"name": "Konditsioner buyurtmasi"},
    "contact": {"name": "Dilnoza", "phone": "+998901112233"},
}


def post_lead(url: str, name: str = "Konditsioner buyurtmasi") -> tuple[httpx.Response, float]:
    body = {**LEAD, "lead": {"name": name}}
    started = time.monotonic()
    answer = httpx.post(f"{url}/api/v1/leads/unsorted", json=body, headers=HEADERS, timeout=60)
    return answer, time.monotonic() - started


def delivery(url: str, delivery_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{url}/api/v1/leads/deliveries/{delivery_id}", headers=HEADERS, timeout=10)
    answer.raise_for_status()
    data: dict[str, Any] = answer.json()["data"]
    return data


def wait_delivered(url: str, ids: list[str], seconds: float) -> float:
    """Seconds until every delivery is delivered; fails after `seconds`."""
    started = time.monotonic()
    while True:
        states = [delivery(url, d)["status"] for d in ids]
        if all(s == "delivered" for s in states):
            return time.monotonic() - started
        assert time.monotonic() - started < seconds, states
        time.sleep(0.1)


def log_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


def fault(sandbox: SandboxServer, mode: str, seconds: float = 120) -> None:
    answer = httpx.post(
        f"{sandbox.url}/_sandbox/faults", json={"mode": mode, "duration_s": seconds}, timeout=5
    )
    answer.raise_for_status()


def clear_faults(sandbox: SandboxServer) -> None:
    httpx.delete(f"{sandbox.url}/_sandbox/faults", timeout=5).raise_for_status()


@pytest.fixture
def sandbox_and_port() -> Iterator[tuple[SandboxServer, int]]:
    port = free_port()
    redirect = f"http://127.0.0.1:{port}/oauth/callback"
    with SandboxServer(rate_limit=0, redirect_uri=redirect) as sandbox:
        yield sandbox, port


def amo_env(sandbox: SandboxServer, **extra: str) -> dict[str, str]:
    return {
        "AMO_BASE_URL": sandbox.url,
        "AMO_CLIENT_ID": sandbox.config.client_id,
        "AMO_CLIENT_SECRET": sandbox.config.client_secret,
        "AMO_REDIRECT_URI": sandbox.config.redirect_uri,
        **extra,
    }


# --- outage honesty ----------------------------------------------------------------------------


def test_during_an_outage_a_lead_is_answered_202_at_once_and_ready_says_amocrm_is_down(
    tmp_path: Path, sandbox_and_port: tuple[SandboxServer, int]
) -> None:
    sandbox, port = sandbox_and_port
    env = amo_env(
        sandbox, LEAD_SYNC_TIMEOUT="30", DELIVERY_RETRY_BASE_SECONDS="1", LOG_LEVEL="INFO"
    )
    with running_gateway(tmp_path, port=port, environment=env) as url:
        connect_through_browser_flow(url, sandbox.url)
        ready = httpx.get(f"{url}/health/ready").json()
        assert ready["data"]["amocrm"] == "ok"

        fault(sandbox, "500")
        answer, seconds = post_lead(url)
        # With LEAD_SYNC_TIMEOUT=30 the request used to be held through the retries (~30 s).
        assert answer.status_code == 202, answer.text
        assert seconds < 15, seconds
        delivery_id = answer.json()["data"]["delivery_id"]

        during = httpx.get(f"{url}/health/ready")
        assert during.status_code == 200  # still takes leads: a balancer must keep sending
        body = during.json()
        assert body["message"] == "Gateway is ready; amoCRM is not answering, leads are queued"
        assert re.fullmatch(
            r"amoCRM is not answering since \S+ \(last attempt: HTTP 500\); "
            r"leads are kept and retried",
            body["data"]["amocrm"],
        )

        clear_faults(sandbox)
        wait_delivered(url, [delivery_id], 30)
        after = httpx.get(f"{url}/health/ready").json()
        assert after["data"]["amocrm"] == "ok"
        lead_id = delivery(url, delivery_id)["amocrm"]["lead_id"]

    lines = log_lines(tmp_path / "gateway.log")
    failed = [e for e in lines if e["event"] == "delivery.attempt.failed"]
    assert failed, "no delivery.attempt.failed line"
    assert failed[0]["status"] == 500
    assert failed[0]["reason"] == "amoCRM is unavailable (HTTP 500)"
    assert datetime.fromisoformat(failed[0]["retry_at"]) > datetime.fromisoformat(
        failed[0]["timestamp"]
    )
    delivered = [e for e in lines if e["event"] == "delivery.delivered"]
    assert [e["lead_id"] for e in delivered] == [lead_id]
    assert "datetime.datetime(" not in (tmp_path / "gateway.log").read_text()


# --- reconnect wakes the queue -----------------------------------------------------------------


@pytest.mark.parametrize("how", ["browser", "cli"])
def test_leads_waiting_for_amocrm_go_out_as_soon_as_it_is_connected(
    tmp_path: Path, sandbox_and_port: tuple[SandboxServer, int], how: str
) -> None:
    sandbox, port = sandbox_and_port
    with running_gateway(tmp_path, port=port, environment=amo_env(sandbox)) as url:
        ids = []
        for n in range(2):
            answer, _ = post_lead(url, f"Kutilayotgan lid {n}")
            assert answer.status_code == 202, answer.text
            ids.append(answer.json()["data"]["delivery_id"])
        # Not connected: each waits for reauthorization, next try a minute later.
        assert all(delivery(url, d)["attempts"] for d in ids)

        if how == "browser":
            connect_through_browser_flow(url, sandbox.url)
        else:
            code = httpx.post(f"{sandbox.url}/_sandbox/authorize", json={}).json()["code"]
            exchanged = subprocess.run(
                [sys.executable, "-m", "amogate", "auth", "exchange", code],
                env=gateway_env(tmp_path, **amo_env(sandbox)),
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert exchanged.returncode == 0, exchanged.stderr
        # Before, they waited for their scheduled retry (60 s after the failed attempt).
        wait_delivered(url, ids, 20)


# --- start-up messages --------------------------------------------------------------------------


def _serve(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "amogate", "serve", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_missing_setting_says_the_current_folder_has_no_env_file(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / ".env").write_text(f"API_KEY={API_KEY}\n")
    env = gateway_env(tmp_path)
    del env["API_KEY"]

    result = _serve(tmp_path, env=env)

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "amogate: invalid configuration: API_KEY is empty: set a random key of at least 16 "
        f"characters (no .env in {tmp_path}: run amogate in the folder that holds it, or pass "
        "--env-file PATH)"
    ]
    missing = _serve(tmp_path, "--env-file", "nowhere.env", env=env)
    assert missing.stderr.strip() == "amogate: --env-file nowhere.env: no such file"


def test_serve_reads_the_env_file_it_is_given_and_says_so(tmp_path: Path) -> None:
    settings = tmp_path / "conf" / "gateway.env"
    settings.parent.mkdir()
    settings.write_text(f"API_KEY={API_KEY}\nLOG_LEVEL=INFO\n")
    env = gateway_env(tmp_path)
    del env["API_KEY"], env["LOG_LEVEL"]
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "amogate",
            "serve",
            "--port",
            str(port),
            "--env-file",
            str(settings),
        ],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", process=process)
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()
    first = log_lines(tmp_path / "serve.log")[0]
    assert first["event"] == "settings.read"
    assert first["env_file"] == str(settings)


@pytest.mark.parametrize("command", ["serve", "sandbox"])
def test_a_busy_port_is_one_line_before_anything_starts(tmp_path: Path, command: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "amogate", command, "--host", "127.0.0.1", "--port", str(port)],
            env=gateway_env(tmp_path, LOG_LEVEL="INFO"),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 2
    output = (result.stdout + result.stderr).strip().splitlines()
    assert output == [
        f"amogate: port {port} on 127.0.0.1 is already in use by another program: stop it, "
        "or choose another port with --port" + (" or PORT" if command == "serve" else "")
    ]
    assert not (tmp_path / "gateway.db").exists()  # no migration ran


# --- CORS refusals ------------------------------------------------------------------------------


def test_a_refused_preflight_answers_in_the_envelope_and_logs_what_would_allow_it(
    tmp_path: Path,
) -> None:
    with running_gateway(tmp_path, CORS_ALLOWED_ORIGINS="https://site.uz") as url:
        refused = httpx.options(
            f"{url}/api/v1/leads/unsorted",
            headers={
                "Origin": "https://shop.uz",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-api-key",
            },
        )
        allowed = httpx.options(
            f"{url}/api/v1/leads/unsorted",
            headers={"Origin": "https://site.uz", "Access-Control-Request-Method": "POST"},
        )
    assert refused.status_code == 400
    assert refused.headers["content-type"] == "application/json"
    body = refused.json()
    assert body["success"] is False
    assert body["error"] == "CORS request not allowed"
    assert "CORS_ALLOWED_ORIGINS" in body["details"]["origin"]
    assert "amogate keys create NAME --origin https://shop.uz" in body["details"]["origin"]
    assert "access-control-allow-origin" not in refused.headers
    assert allowed.status_code == 200
    [warning] = [e for e in log_lines(tmp_path / "gateway.log") if e["event"] == "cors.refused"]
    assert warning["origin"] == "https://shop.uz"
    assert warning["level"] == "warning"
    assert "CORS_ALLOWED_ORIGINS" in warning["allow"]


# --- amoCRM's answers as advice -------------------------------------------------------------------


def _callback_with_consent(url: str, sandbox_url: str, lang: str | None = None) -> httpx.Response:
    """The operator connects (the admin key starts it; the state cookie goes back with the
    callback, as a browser would send it) and consents in the sandbox."""
    with httpx.Client(base_url=url) as browser:
        consent = browser.get("/oauth/authorize", headers=HEADERS).headers["location"]
        query = parse_qs(urlsplit(consent).query)
        code = httpx.post(
            f"{sandbox_url}/_sandbox/authorize",
            json={"client_id": query["client_id"][0], "state": query["state"][0]},
        ).json()["code"]
        if lang:
            browser.cookies.set("amogate_lang", lang)
        return browser.get(
            "/oauth/callback",
            params={
                "code": code,
                "state": query["state"][0],
                "referer": urlsplit(sandbox_url).netloc,
            },
        )


def test_a_wrong_client_secret_is_answered_with_the_settings_to_check(
    tmp_path: Path, sandbox_and_port: tuple[SandboxServer, int]
) -> None:
    sandbox, port = sandbox_and_port
    env = amo_env(sandbox, AMO_CLIENT_SECRET="a-secret-of-another-integration")
    with running_gateway(tmp_path, port=port, environment=env) as url:
        english = _callback_with_consent(url, sandbox.url)
        russian = _callback_with_consent(url, sandbox.url, lang="ru")
    assert english.status_code == 502
    assert "check AMO_CLIENT_ID / AMO_CLIENT_SECRET" in english.text
    assert 'href="/admin/static/admin.css"' in english.text
    assert '<html lang="ru">' in russian.text
    assert "проверьте AMO_CLIENT_ID / AMO_CLIENT_SECRET" in russian.text
    assert "a-secret-of-another-integration" not in english.text + russian.text


def test_a_redirect_uri_that_differs_from_the_integrations_is_named(
    tmp_path: Path, sandbox_and_port: tuple[SandboxServer, int]
) -> None:
    sandbox, port = sandbox_and_port
    env = amo_env(sandbox, AMO_REDIRECT_URI=f"http://gateway.example:{port}/oauth/callback")
    with running_gateway(tmp_path, port=port, environment=env) as url:
        mismatch = _callback_with_consent(url, sandbox.url)
        lost_state = httpx.get(
            f"{url}/oauth/callback",
            params={"code": "x", "state": "not-issued-here", "referer": "a.amocrm.ru"},
            headers={"Accept-Language": "uz"},
        )
    assert "AMO_REDIRECT_URI equals the integration's Redirect URI" in unescape(mismatch.text)
    assert lost_state.status_code == 400
    assert '<html lang="uz">' in lost_state.text
    assert "AMO_REDIRECT_URI integratsiyaning Redirect URI bilan bir xil" in unescape(
        lost_state.text
    )


# --- the CLI ------------------------------------------------------------------------------------


def _help_pages() -> list[list[str]]:
    from amogate.cli import command

    pages: list[list[str]] = [[]]

    def walk(cmd: Any, path: list[str]) -> None:
        for name, sub in getattr(cmd, "commands", {}).items():
            pages.append([*path, name])
            walk(sub, [*path, name])

    walk(command(), [])
    return pages


def test_help_shows_what_to_type_not_python_types_and_one_argument_style(tmp_path: Path) -> None:
    pages = _help_pages()
    assert len(pages) > 15
    for path in pages:
        shown = subprocess.run(
            [sys.executable, "-m", "amogate", *path, "--help"],
            env={**gateway_env(tmp_path), "COLUMNS": "100"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert shown.returncode == 0, shown.stderr
        assert not re.search(r"<(str|int|bool|float|path|list)[^>]*>", shown.stdout), path
        usage = next(line for line in shown.stdout.splitlines() if "Usage:" in line)
        for argument in re.findall(r"[{\[]([^\]}]+)[}\]]", usage):
            if argument not in ("OPTIONS", "ARGS"):
                assert argument.upper() == argument, (path, usage)


def test_deliveries_list_is_a_table_with_headers_and_utc_times(tmp_path: Path) -> None:
    with running_gateway(tmp_path, LEAD_SYNC_TIMEOUT="0", AMO_BASE_URL="http://127.0.0.1:9") as url:
        answer, _ = post_lead(url, "Jadval uchun lid")
        assert answer.status_code == 202
    listed = subprocess.run(
        [sys.executable, "-m", "amogate", "deliveries", "list"],
        env=gateway_env(tmp_path, AMO_BASE_URL="http://127.0.0.1:9"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()[:2]
    assert header.split() == [
        "ID",
        "STATE",
        "CREATED",
        "ATTEMPTS",
        "AMOCRM",
        "LEAD",
        "CONTACT",
        "LEAD",
        "LAST",
        "ERROR",
    ]
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", row)
    assert "Jadval uchun lid" in row


# --- /docs offline ------------------------------------------------------------------------------


def test_docs_reference_only_assets_the_gateway_serves_itself(tmp_path: Path) -> None:
    with running_gateway(tmp_path) as url:
        page = httpx.get(f"{url}/docs")
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        served = {asset: httpx.get(f"{url}{asset}") for asset in assets}
    assert page.status_code == 200
    assert sorted(assets) == [
        "/docs/static/favicon.png",
        "/docs/static/swagger-ui-bundle.js",
        "/docs/static/swagger-ui.css",
    ]
    assert "http" not in page.text.replace("http-equiv", "")  # no other host named anywhere
    for asset, answer in served.items():
        assert answer.status_code == 200, asset
        assert len(answer.content) > 1000, asset
    assert (
        served["/docs/static/swagger-ui-bundle.js"]
        .headers["content-type"]
        .startswith("text/javascript")
    )
