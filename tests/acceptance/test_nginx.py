"""deploy/nginx/amogate.conf in front of a running gateway, with a real nginx."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_API_KEY
from tests.support.ci import unavailable
from tests.support.processes import free_port, running_gateway, wait_for_http

REPO = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)

pytestmark = pytest.mark.slow


@pytest.fixture
def through_nginx(tmp_path: Path) -> Iterator[str]:
    """The gateway on a free port and nginx (with the shipped config) on another."""
    if NGINX is None:
        unavailable("nginx is not installed (apt-get install nginx-light)")
    with running_gateway(tmp_path) as gateway_url:
        nginx_port = free_port()
        prefix = tmp_path / "nginx"
        (prefix / "logs").mkdir(parents=True)
        params = prefix / "amogate_proxy_params"
        shutil.copy(REPO / "deploy/nginx/amogate_proxy_params", params)
        site = (REPO / "deploy/nginx/amogate.conf").read_text()
        site = (
            site.replace("127.0.0.1:9095", gateway_url.removeprefix("http://"))
            .replace("listen 80;", f"listen 127.0.0.1:{nginx_port};")
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
        url = f"http://127.0.0.1:{nginx_port}"
        try:
            wait_for_http(f"{url}/health", process=process)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)


def test_requests_pass_through_nginx_with_security_headers(through_nginx: str) -> None:
    health = httpx.get(f"{through_nginx}/health")
    assert health.status_code == 200
    assert health.json() == {
        "success": True,
        "message": "Gateway is running",
        "data": {"status": "ok"},
    }
    assert health.headers["x-content-type-options"] == "nosniff"
    assert health.headers["x-frame-options"] == "DENY"
    assert "server" not in health.headers or "nginx/" not in health.headers["server"]
    unauthorized = httpx.post(f"{through_nginx}/api/v1/leads/unsorted", json={})
    assert unauthorized.status_code == 401
    assert unauthorized.json()["error"] == "Invalid or missing API key"
    invalid = httpx.post(
        f"{through_nginx}/api/v1/leads/unsorted", json={}, headers={"X-API-KEY": TEST_API_KEY}
    )
    assert invalid.status_code == 422


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
    through_nginx: str, tmp_path: Path
) -> None:
    given = httpx.get(f"{through_nginx}/health?given", headers={"X-Request-ID": "site-form-7"})
    assert given.headers["x-request-id"] == "site-form-7"
    created = httpx.get(f"{through_nginx}/health?created")
    # The id the caller sees is the one nginx made and logged, kept by amogate, not one that
    # amogate made up (both are 32 hex characters).
    assert [created.headers["x-request-id"]] == _nginx_request_ids(tmp_path, "/health?created")


@pytest.mark.parametrize("path", ["/.env", "/.git/config", "/storage/tokens.json", "/tokens.json"])
def test_dotfiles_and_token_files_are_denied(through_nginx: str, path: str) -> None:
    assert httpx.get(f"{through_nginx}{path}").status_code == 403


def test_api_bursts_are_limited_with_an_envelope_429(through_nginx: str) -> None:
    statuses: list[int] = []
    limited: httpx.Response | None = None
    with httpx.Client() as client:
        started = time.monotonic()
        for _ in range(120):
            response = client.get(f"{through_nginx}/api/v1/diagnostics/config")
            statuses.append(response.status_code)
            if response.status_code == 429:
                limited = response
        elapsed = time.monotonic() - started
    assert 429 in statuses, f"no 429 in {len(statuses)} requests over {elapsed:.2f}s"
    assert limited is not None
    assert limited.json() == {"success": False, "error": "Too many requests"}
    assert limited.headers["retry-after"] == "1"
    # /health is outside /api/ and never limited by nginx.
    assert all(httpx.get(f"{through_nginx}/health").status_code == 200 for _ in range(5))
