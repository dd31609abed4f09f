"""`amogate demo` as a user runs it: the printed curl line creates a lead in the sandbox."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.processes import free_port

pytestmark = pytest.mark.slow


def _read_until(process: subprocess.Popen[str], marker: str, timeout: float) -> str:
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                break
            continue
        lines.append(line)
        if marker in line:
            return "".join(lines)
    raise AssertionError("demo did not get ready:\n" + "".join(lines))


def test_the_printed_curl_line_creates_a_lead_visible_in_the_sandbox(tmp_path: Path) -> None:
    gateway_port, sandbox_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AMO_", "API_KEY"))}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "amogate",
            "demo",
            "--port",
            str(gateway_port),
            "--sandbox-port",
            str(sandbox_port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        banner = _read_until(process, "Press Ctrl-C", timeout=60)
        lead_curl = next(
            line.strip() for line in banner.splitlines() if "leads/unsorted -H" in line
        )
        view_curl = next(
            line.strip() for line in banner.splitlines() if "/api/v4/leads/unsorted" in line
        )
        assert f"127.0.0.1:{gateway_port}" in lead_curl
        admin = re.search(r"admin page:\s+(\S+)\s+\(password: (\S+)\)", banner)
        assert admin is not None, banner
        assert admin.group(1) == f"http://127.0.0.1:{gateway_port}/admin"
        with httpx.Client() as browser:  # signs in with the printed password
            form = browser.get(f"{admin.group(1)}/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert csrf is not None, form.text
            signed_in = browser.post(
                f"{admin.group(1)}/login",
                data={"csrf": csrf.group(1), "password": admin.group(2), "next": "/admin"},
            )
            assert signed_in.status_code == 303
            overview = browser.get(admin.group(1))
            assert overview.status_code == 200
            assert 'id="account-name">Sandbox savdo<' in overview.text
        created = subprocess.run(
            ["bash", "-c", lead_curl], capture_output=True, text=True, timeout=30, check=True
        )
        answer = json.loads(created.stdout)
        assert answer["success"] is True, answer
        delivery_id = answer["data"]["delivery_id"]
        deadline = time.monotonic() + 30
        while True:
            listed = subprocess.run(
                ["bash", "-c", view_curl], capture_output=True, text=True, timeout=30, check=True
            )
            if listed.stdout.strip():
                items = json.loads(listed.stdout)["_embedded"]["unsorted"]
                if any(item.get("source_uid") == delivery_id for item in items):
                    break
            assert time.monotonic() < deadline, "the lead never reached the sandbox"
            time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
            if process.stdout is not None:
                process.stdout.close()
    # Ctrl-C stops both: nothing answers on either port afterwards.
    for port in (gateway_port, sandbox_port):
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
    assert re.search(r"demo API key:\s+demo-", banner)
