"""Real processes for acceptance tests: free ports, a running `amogate serve`, waiting."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx


def run_amogate(
    tmp_path: Path, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    """One `amogate ...` command as a real process (output captured, never raises)."""
    return subprocess.run(
        [sys.executable, "-m", "amogate", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_http(
    url: str, *, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            if process is not None and process.poll() is not None:
                raise RuntimeError(
                    f"process exited with {process.returncode} before {url} answered"
                ) from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def gateway_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment for a gateway process (nothing from the developer's .env)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AMO_", "API_KEY", "DATABASE_URL", "LEAD_", "ADMIN_"))
    }
    env.update(
        API_KEY="test-admin-key-0123456789",
        DATABASE_URL=f"sqlite:///{tmp_path / 'gateway.db'}",
        TOKEN_STORAGE_PATH=str(tmp_path / "tokens.json"),
        ERROR_LOG_PATH=str(tmp_path / "error.log"),
        LOG_FORMAT="json",
        LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


@contextmanager
def running_gateway(
    tmp_path: Path,
    *args: str,
    port: int | None = None,
    log_name: str = "gateway.log",
    environment: Mapping[str, str] | None = None,
    **env: str,
) -> Iterator[str]:
    """`amogate serve` as a real process; yields its base URL; terminates it afterwards.
    Its environment: `gateway_env` plus `environment` plus `env`."""
    port = port or free_port()
    env = {**(environment or {}), **env}
    log = (tmp_path / log_name).open("ab")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "amogate",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *args,
        ],
        env=gateway_env(tmp_path, **env),
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/health", process=process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def connect_through_browser_flow(
    gateway_url: str, sandbox_url: str, *, api_key: str = "test-admin-key-0123456789"
) -> None:
    """Connect a running gateway to a running sandbox the way an admin's browser does:
    /oauth/authorize (with the admin key; the client keeps the state cookie), the consent
    (given through the sandbox's control API), then /oauth/callback."""
    from urllib.parse import parse_qs, urlsplit

    with httpx.Client(timeout=15) as client:
        start = client.get(f"{gateway_url}/oauth/authorize", headers={"X-API-KEY": api_key})
        consent = start.headers["location"]
        query = parse_qs(urlsplit(consent).query)
        code = client.post(
            f"{sandbox_url}/_sandbox/authorize",
            json={"client_id": query["client_id"][0], "state": query["state"][0]},
        ).json()["code"]
        answer = client.get(
            f"{gateway_url}/oauth/callback",
            params={
                "code": code,
                "state": query["state"][0],
                "referer": urlsplit(sandbox_url).netloc,
            },
            headers={"Accept": "application/json"},
        )
        answer.raise_for_status()


def log_events(path: Path) -> list[dict[str, Any]]:
    """The JSON log lines (LOG_FORMAT=json) a process has written so far."""
    events = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except ValueError:
                continue  # a line still being written
    return events


def wait_for_event(
    path: Path, event: str, *, process: subprocess.Popen[bytes], timeout: float = 30.0
) -> dict[str, Any]:
    """Poll a process's JSON log until it logs `event`; fail fast if the process exits."""
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in log_events(path) if e.get("event") == event]
        if found:
            return found[0]
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode} before logging {event}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {event} in {path} after {timeout} s")
        time.sleep(0.05)


@contextmanager
def running_worker(tmp_path: Path, log_name: str = "worker.log", **env: str) -> Iterator[Path]:
    """`amogate worker` as a real process, yielded once its delivery loop has started (it logged
    `worker.started`); yields its JSON log (at INFO: a `delivery.delivered` per lead it sent)."""
    path = tmp_path / log_name
    log = path.open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "amogate", "worker"],
        env=gateway_env(tmp_path, **{"LOG_LEVEL": "INFO", **env}),
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_event(path, "worker.started", process=process)
        yield path
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
