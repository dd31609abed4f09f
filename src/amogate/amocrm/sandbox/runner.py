"""`SandboxServer`: the sandbox as a real separate process, for tests and benchmarks.

    with SandboxServer(rate_limit=0) as sandbox:
        httpx.get(f"{sandbox.url}/_sandbox/stats")

It picks a free 127.0.0.1 port, starts `python -m amogate.amocrm.sandbox`, waits until the
control API answers, and terminates the process on exit. Output goes to /dev/null unless
`log_to` names a file.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx

from amogate.amocrm.sandbox.config import DEFAULT_PUBLIC_URL, SandboxConfig

START_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class SandboxServer:
    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        port: int | None = None,
        log_to: Path | None = None,
        **overrides: Any,
    ) -> None:
        """`overrides` are `SandboxConfig` fields, e.g. `SandboxServer(rate_limit=0)`."""
        self.port = port or free_port()
        base = config or SandboxConfig()
        values = {**{f: getattr(base, f) for f in base.__dataclass_fields__}, **overrides}
        if "public_url" not in overrides and base.public_url == DEFAULT_PUBLIC_URL:
            values["public_url"] = f"http://127.0.0.1:{self.port}"
        self.config = SandboxConfig(**values)
        self.log_to = log_to
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def args(self) -> list[str]:
        c = self.config
        args = [
            sys.executable,
            "-m",
            "amogate.amocrm.sandbox",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--subdomain",
            c.subdomain,
            "--client-id",
            c.client_id,
            "--client-secret",
            c.client_secret,
            "--redirect-uri",
            c.redirect_uri,
            "--access-token-ttl",
            str(c.access_token_ttl),
            "--refresh-token-ttl",
            str(c.refresh_token_ttl),
            "--rate-limit",
            str(c.rate_limit),
            "--public-url",
            c.public_url,
            "--block-after-s",
            str(c.block_after_s),
            "--block-duration-s",
            str(c.block_duration_s),
            "--webhook-timeout-s",
            str(c.webhook_timeout_s),
            "--webhook-retry-factor",
            str(c.webhook_retry_factor),
            "--webhook-disable-failures",
            str(c.webhook_disable_failures),
            "--webhook-disable-window-s",
            str(c.webhook_disable_window_s),
            "--account-id",
            str(c.account_id),
        ]
        if c.long_lived_token is not None:
            args += ["--long-lived-token", c.long_lived_token]
        if c.unsorted_source_uid_filter:
            args.append("--unsorted-source-uid-filter")
        if c.duplicate_control:
            args.append("--duplicate-control")
        return args

    def start(self) -> SandboxServer:
        self._log = open(self.log_to, "ab") if self.log_to else open(os.devnull, "wb")  # noqa: SIM115
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            self.args(), stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"sandbox exited early with code {self.process.returncode}")
            try:
                httpx.get(f"{self.url}/_sandbox/stats", timeout=0.5)
                return self
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"sandbox did not answer on {self.url} within {START_TIMEOUT_S}s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
