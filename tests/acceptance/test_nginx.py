"""deploy/nginx/amogate.conf in front of a running gateway, with a real nginx: TLS (a
self-signed certificate stands in for certbot's), the HTTP redirect, HSTS, the rate limits on
the API, on signing in and on connecting amoCRM, /metrics denied, dotfiles denied."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_API_KEY
from tests.support.ci import unavailable
from tests.support.processes import free_port, running_gateway, wait_for_http
from tests.web.helpers import csrf_of

REPO = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
OPENSSL = shutil.which("openssl")
CERTBOT_DIR = "/etc/letsencrypt/live/amogate"

pytestmark = pytest.mark.slow


@dataclass
class Nginx:
    https: httpx.Client  # https://127.0.0.1:<port>, trusting the test certificate
    http_url: str  # the plain-HTTP server block


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, where certbot would put a real one."""
    cert, key = folder / "fullchain.pem", folder / "privkey.pem"
    assert OPENSSL is not None
    made = subprocess.run(
        [
            OPENSSL,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    return cert, key


@pytest.fixture
def through_nginx(tmp_path: Path) -> Iterator[Nginx]:
    """The gateway on a free port (admin page on) and nginx (with the shipped config)."""
    if NGINX is None:
        unavailable("nginx is not installed (apt-get install nginx-light)")
    if OPENSSL is None:
        unavailable("openssl is not installed")
    with running_gateway(tmp_path, ADMIN_PASSWORD="correct horse battery staple") as gateway_url:
        http_port, https_port = free_port(), free_port()
        prefix = tmp_path / "nginx"
        (prefix / "logs").mkdir(parents=True)
        cert, key = _certificate(prefix)
        params = prefix / "amogate_proxy_params"
        shutil.copy(REPO / "deploy/nginx/amogate_proxy_params", params)
        site = (REPO / "deploy/nginx/amogate.conf").read_text()
        for expected in ("listen 80;", "listen 443 ssl;", f"{CERTBOT_DIR}/fullchain.pem"):
            assert expected in site
        site = (
            site.replace("127.0.0.1:9095", gateway_url.removeprefix("http://"))
            .replace("listen 80;", f"listen 127.0.0.1:{http_port};")
            .replace("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;")
            .replace(f"{CERTBOT_DIR}/fullchain.pem", str(cert))
            .replace(f"{CERTBOT_DIR}/privkey.pem", str(key))
            .replace("/etc/nginx/amogate_proxy_params", str(params))
        )
        (prefix / "amogate.conf").write_text(site)
        (prefix / "nginx.conf").write_text(
            f"""
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
    log_format ids '$request_id $http_x_request_id $request_uri';
    access_log {prefix}/logs/access.log ids;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/amogate.conf;
}}
"""
        )
        assert NGINX is not None
        check = subprocess.run(
            [NGINX, "-t", "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert check.returncode == 0, check.stderr
        process = subprocess.Popen(
            [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        http_url = f"http://127.0.0.1:{http_port}"
        trust = ssl.create_default_context(cafile=str(cert))
        try:
            wait_for_http(http_url, process=process)
            with httpx.Client(
                base_url=f"https://127.0.0.1:{https_port}", verify=trust, timeout=15
            ) as client:
                yield Nginx(client, http_url)
        finally:
            process.terminate()
            process.wait(timeout=10)


def test_requests_pass_through_nginx_with_security_headers(through_nginx: Nginx) -> None:
    client = through_nginx.https
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json() == {
        "success": True,
        "message": "Gateway is running",
        "data": {"status": "ok"},
    }
    assert health.headers["x-content-type-options"] == "nosniff"
    assert health.headers["x-frame-options"] == "DENY"
    assert health.headers["strict-transport-security"] == "max-age=31536000"
    assert "server" not in health.headers or "nginx/" not in health.headers["server"]
    unauthorized = client.post("/api/v1/leads/unsorted", json={})
    assert unauthorized.status_code == 401
    assert unauthorized.json()["error"] == "Invalid or missing API key"
    invalid = client.post("/api/v1/leads/unsorted", json={}, headers={"X-API-KEY": TEST_API_KEY})
    assert invalid.status_code == 422


def test_plain_http_is_sent_to_https(through_nginx: Nginx) -> None:
    response = httpx.get(f"{through_nginx.http_url}/admin/login?next=/admin")
    assert response.status_code == 301
    assert response.headers["location"].startswith("https://")
    assert response.headers["location"].endswith("/admin/login?next=/admin")


def test_the_gateway_sees_https_through_the_proxy_and_marks_cookies_secure(
    through_nginx: Nginx,
) -> None:
    page = through_nginx.https.get("/admin/login")
    assert page.status_code == 200
    cookie = page.headers["set-cookie"].lower()
    assert "secure" in {part.strip() for part in cookie.split(";")}


def _nginx_request_ids(tmp_path: Path, uri: str) -> list[str]:
    """The ids nginx gave the requests for `uri`, from its access log ($request_id)."""
    log = tmp_path / "nginx" / "logs" / "access.log"
    deadline = time.monotonic() + 10
    while True:  # nginx writes the line once the answer is sent
        lines = [line.split() for line in log.read_text().splitlines()] if log.exists() else []
        ids = [parts[0] for parts in lines if parts[-1] == uri]
        if ids or time.monotonic() > deadline:
            return ids
        time.sleep(0.05)


def test_request_id_is_passed_through_or_created_by_nginx(
    through_nginx: Nginx, tmp_path: Path
) -> None:
    client = through_nginx.https
    given = client.get("/health?given", headers={"X-Request-ID": "site-form-7"})
    assert given.headers["x-request-id"] == "site-form-7"
    created = client.get("/health?created")
    # The id the caller sees is the one nginx made and logged, kept by amogate, not one that
    # amogate made up (both are 32 hex characters).
    assert [created.headers["x-request-id"]] == _nginx_request_ids(tmp_path, "/health?created")


@pytest.mark.parametrize("path", ["/.env", "/.git/config", "/storage/tokens.json", "/tokens.json"])
def test_dotfiles_and_token_files_are_denied(through_nginx: Nginx, path: str) -> None:
    assert through_nginx.https.get(path).status_code == 403


def test_metrics_are_denied_from_outside_even_with_the_admin_key(through_nginx: Nginx) -> None:
    response = through_nginx.https.get("/metrics", headers={"X-API-KEY": TEST_API_KEY})
    assert response.status_code == 403
    assert "amogate_" not in response.text


def test_api_bursts_are_limited_with_an_envelope_429(through_nginx: Nginx) -> None:
    client = through_nginx.https
    statuses: list[int] = []
    limited: httpx.Response | None = None
    started = time.monotonic()
    for _ in range(120):
        response = client.get("/api/v1/diagnostics/config")
        statuses.append(response.status_code)
        if response.status_code == 429:
            limited = response
    elapsed = time.monotonic() - started
    assert 429 in statuses, f"no 429 in {len(statuses)} requests over {elapsed:.2f}s"
    assert limited is not None
    assert limited.json() == {"success": False, "error": "Too many requests"}
    assert limited.headers["retry-after"] == "1"
    # /health is outside /api/ and never limited by nginx.
    assert all(client.get("/health").status_code == 200 for _ in range(5))


def test_signing_in_and_connecting_are_limited_by_nginx(through_nginx: Nginx) -> None:
    client = through_nginx.https
    page = client.get("/admin/login")
    token = csrf_of(page.text)
    statuses = [
        client.post("/admin/login", data={"csrf": token, "password": f"guess {i}"}).status_code
        for i in range(15)
    ]
    connect = [client.get("/oauth/authorize").status_code for _ in range(15)]
    # nginx's own 429 (its JSON body) before the gateway's limit would even be reached.
    limited = client.post("/admin/login", data={"csrf": token, "password": "again"})
    assert 429 in statuses
    assert 429 in connect
    assert limited.status_code == 429
    assert limited.json() == {"success": False, "error": "Too many requests"}
    assert client.get("/oauth/status").status_code == 200  # status is not limited
