"""Serving the sandbox over real TCP with uvicorn.

The `down` fault must look like a dead server: the connection is reset without any HTTP
answer. uvicorn gives an app no way to do that, so `AbortingH11Protocol` hands every request a
scope extension (`middleware.ABORT_EXTENSION`) that resets the TCP connection (SO_LINGER 0 →
RST). `timeout` needs nothing special: the middleware holds the request until the fault ends.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import socket
import struct
from collections.abc import Sequence
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from amogate.amocrm.sandbox.app import create_sandbox_app
from amogate.amocrm.sandbox.config import DEFAULT_PUBLIC_URL, SandboxConfig
from amogate.amocrm.sandbox.middleware import ABORT_EXTENSION


class AbortingH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a way for the app to drop the connection unanswered."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        inner = self.app

        async def app(scope: Any, receive: Any, send: Any) -> None:
            scope.setdefault("extensions", {})[ABORT_EXTENSION] = self._reset_connection
            await inner(scope, receive, send)

        self.app = app

    def _reset_connection(self) -> None:
        transport: asyncio.Transport | None = getattr(self, "transport", None)
        if transport is None or transport.is_closing():
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Linger 0: close with RST, as a crashed server's kernel would.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()


def effective_config(config: SandboxConfig, host: str, port: int) -> SandboxConfig:
    """Point `public_url` at where we listen when it was left at the default."""
    if config.public_url != DEFAULT_PUBLIC_URL:
        return config
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
    return dataclasses.replace(config, public_url=f"http://{shown}:{port}")


def run(config: SandboxConfig, host: str = "127.0.0.1", port: int = 9096) -> None:
    """Serve the sandbox until interrupted (blocking)."""
    config = effective_config(config, host, port)
    app = create_sandbox_app(config)
    server_config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=AbortingH11Protocol,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    uvicorn.Server(server_config).run()


def parse_args(argv: Sequence[str] | None = None) -> tuple[SandboxConfig, str, int]:
    """The flags of `amogate sandbox`, plus sandbox-only ones (`--public-url`, block mode,
    `--duplicate-control`, the `--webhook-*` policy: see config.py and webhook_policy.py)."""
    defaults = SandboxConfig()
    parser = argparse.ArgumentParser(prog="amogate-sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9096)
    parser.add_argument("--subdomain", default=defaults.subdomain)
    parser.add_argument("--client-id", default=defaults.client_id)
    parser.add_argument("--client-secret", default=defaults.client_secret)
    parser.add_argument("--redirect-uri", default=defaults.redirect_uri)
    parser.add_argument("--long-lived-token", default=None)
    parser.add_argument("--access-token-ttl", type=int, default=defaults.access_token_ttl)
    parser.add_argument("--refresh-token-ttl", type=int, default=defaults.refresh_token_ttl)
    parser.add_argument("--rate-limit", type=int, default=defaults.rate_limit)
    parser.add_argument("--public-url", default=defaults.public_url)
    parser.add_argument("--block-after-s", type=int, default=defaults.block_after_s)
    parser.add_argument("--block-duration-s", type=int, default=defaults.block_duration_s)
    parser.add_argument("--unsorted-source-uid-filter", action="store_true")
    parser.add_argument("--duplicate-control", action="store_true")
    parser.add_argument("--webhook-timeout-s", type=float, default=defaults.webhook_timeout_s)
    parser.add_argument("--webhook-retry-factor", type=float, default=defaults.webhook_retry_factor)
    parser.add_argument(
        "--webhook-disable-failures", type=int, default=defaults.webhook_disable_failures
    )
    parser.add_argument(
        "--webhook-disable-window-s", type=float, default=defaults.webhook_disable_window_s
    )
    parser.add_argument("--account-id", type=int, default=defaults.account_id)
    args = parser.parse_args(argv)
    config = SandboxConfig(
        subdomain=args.subdomain,
        client_id=args.client_id,
        client_secret=args.client_secret,
        redirect_uri=args.redirect_uri,
        long_lived_token=args.long_lived_token,
        access_token_ttl=args.access_token_ttl,
        refresh_token_ttl=args.refresh_token_ttl,
        rate_limit=args.rate_limit,
        public_url=args.public_url,
        block_after_s=args.block_after_s,
        block_duration_s=args.block_duration_s,
        unsorted_source_uid_filter=args.unsorted_source_uid_filter,
        duplicate_control=args.duplicate_control,
        webhook_timeout_s=args.webhook_timeout_s,
        webhook_retry_factor=args.webhook_retry_factor,
        webhook_disable_failures=args.webhook_disable_failures,
        webhook_disable_window_s=args.webhook_disable_window_s,
        account_id=args.account_id,
    )
    return config, args.host, args.port


def main(argv: Sequence[str] | None = None) -> None:
    config, host, port = parse_args(argv)
    run(config, host, port)
