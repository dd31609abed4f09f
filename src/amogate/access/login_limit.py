"""Sign-in attempt limits, shared by every instance through the `rate_counters` table.

At most `PER_ADDRESS` attempts a minute per client address (an IPv6 address counts by its /64,
which one subscriber usually holds whole) and at most `GLOBAL` a minute from everyone together,
so guessing from many addresses is capped too. The table cannot be filled by an attacker with
many addresses: once the global cap is reached nothing more is written that minute, and each
new minute deletes the previous minutes' rows. A successful sign-in does not count.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from amogate.storage import rate_counters

PER_ADDRESS = 5
GLOBAL = 50
WINDOW_S = 60
PREFIX = "admin_login:"
GLOBAL_BUCKET = PREFIX + "*"


def client_key(host: str | None) -> str:
    """What attempts are counted by: the IPv4 address, or the /64 of an IPv6 address."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@dataclass(frozen=True)
class Attempt:
    """One counted sign-in attempt; `wait` > 0 when it is refused (seconds to wait)."""

    bucket: str
    window: int
    wait: int = 0

    @property
    def refused(self) -> bool:
        return self.wait > 0


async def begin(conn: AsyncConnection, host: str | None, now: float) -> Attempt:
    """Count an attempt from `host` before the password is checked. Call inside a write
    transaction."""
    window = int(now // WINDOW_S) * WINDOW_S
    bucket = PREFIX + client_key(host)
    wait = max(1, math.ceil(window + WINDOW_S - now))
    if await rate_counters.current(conn, GLOBAL_BUCKET, window) >= GLOBAL:
        return Attempt(bucket, window, wait)  # nothing written past the global cap
    if await rate_counters.hit(conn, bucket, window) > PER_ADDRESS:
        return Attempt(bucket, window, wait)  # one address never eats the global cap
    if await rate_counters.hit(conn, GLOBAL_BUCKET, window) == 1:
        # A new minute: the earlier minutes' rows of every address are of no further use.
        await rate_counters.purge_before(conn, window, prefix=PREFIX)
    return Attempt(bucket, window)


async def forgive(conn: AsyncConnection, attempt: Attempt) -> None:
    """A successful sign-in: take its attempt back from both counts."""
    await rate_counters.refund(conn, attempt.bucket, attempt.window)
    await rate_counters.refund(conn, GLOBAL_BUCKET, attempt.window)
