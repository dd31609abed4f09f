"""The HTTP server's options for `amogate serve` (the benchmark's floor runs on the same)."""

from __future__ import annotations

from typing import Any


def server_options(host: str, port: int, *, forwarded_allow_ips: str) -> dict[str, Any]:
    """uvicorn's options: no access log of its own (amogate writes one), no Server header."""
    return {
        "host": host,
        "port": port,
        "log_config": None,
        "access_log": False,
        # X-Forwarded-For/-Proto are believed from the proxy alone (FORWARDED_ALLOW_IPS): the
        # sign-in limit counts by the client address they give, the cookies' Secure flag by the
        # scheme.
        "proxy_headers": True,
        "forwarded_allow_ips": forwarded_allow_ips,
        "server_header": False,
        "ws": "none",  # no WebSocket routes: uvicorn need not load a WebSocket library
    }
