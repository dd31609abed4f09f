"""The command line as a user runs it: real processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import TEST_API_KEY


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AMO_", "API_KEY"))}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'cli.db'}",
        TOKEN_STORAGE_PATH=str(tmp_path / "tokens.json"),
        ERROR_LOG_PATH=str(tmp_path / "error.log"),
        LOG_FORMAT="json",
    )
    env.update(extra)
    return env


def _amogate(*args: str) -> list[str]:
    return [sys.executable, "-m", "amogate", *args]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_serve_with_an_empty_api_key_exits_at_once_naming_it(tmp_path: Path) -> None:
    started = time.monotonic()
    result = subprocess.run(
        _amogate("serve"),
        env=_env(tmp_path, API_KEY=""),
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode != 0
    assert time.monotonic() - started < 15
    assert "API_KEY" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_serve_refuses_a_malformed_domain_and_an_unreachable_database(tmp_path: Path) -> None:
    bad_domain = subprocess.run(
        _amogate("serve"),
        env=_env(tmp_path, API_KEY=TEST_API_KEY, AMO_DOMAIN="https://my.amocrm.ru/"),
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
        check=False,
    )
    assert bad_domain.returncode != 0
    assert "AMO_DOMAIN" in bad_domain.stderr
    no_db = subprocess.run(
        _amogate("serve"),
        env=_env(
            tmp_path,
            API_KEY=TEST_API_KEY,
            DATABASE_URL=f"postgresql://nobody@127.0.0.1:{_free_port()}/none",
        ),
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
        check=False,
    )
    assert no_db.returncode != 0
    assert "DATABASE_URL" in no_db.stderr
    assert "Traceback" not in no_db.stderr


def test_db_upgrade_then_serve_answers_health(tmp_path: Path) -> None:
    env = _env(tmp_path, API_KEY=TEST_API_KEY)
    upgrade = subprocess.run(
        _amogate("db", "upgrade"),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert upgrade.returncode == 0, upgrade.stderr
    assert "revision" in upgrade.stdout
    port = _free_port()
    server = subprocess.Popen(
        _amogate("serve", "--host", "127.0.0.1", "--port", str(port), "--no-worker"),
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.1)
        assert response.json() == {
            "success": True,
            "message": "Gateway is running",
            "data": {"status": "ok"},
        }
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_version_is_printed() -> None:
    result = subprocess.run(
        _amogate("--version"), capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0
    assert result.stdout.startswith("amogate ")


def test_serve_with_several_processes_answers_from_each(tmp_path: Path) -> None:
    env = _env(tmp_path, API_KEY=TEST_API_KEY)
    port = _free_port()
    server = subprocess.Popen(
        _amogate(
            "serve", "--host", "127.0.0.1", "--port", str(port), "--processes", "2", "--no-worker"
        ),
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 40
        pids: set[int] = set()
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.1)
        # Both processes serve the port: uvicorn's supervisor has two live children.
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children")
        while time.monotonic() < deadline:
            pids = {int(p) for p in children.read_text().split()}
            if len(pids) >= 2:
                break
            time.sleep(0.1)
        assert len(pids) >= 2
        for _ in range(20):
            assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=20)
