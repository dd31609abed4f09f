"""Is the port free? Asked before anything starts, so a busy port is one clear line instead of
migrations, a worker and "startup complete" followed by a bind error."""

from __future__ import annotations

import errno
import socket


def port_problem(host: str, port: int) -> str | None:
    """Why `host:port` cannot be listened on, or None when it can."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            # As the server will: a port held only by closing connections (TIME_WAIT) is free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return f"port {port} on {host} is already in use by another program"
        if exc.errno == errno.EACCES:
            return f"port {port} on {host} needs more privileges: use a port above 1023"
        return f"cannot listen on {host}:{port} ({exc.strerror or 'unknown error'})"
    return None
