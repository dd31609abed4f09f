"""ADMIN_PASSWORD as an Argon2id hash (argon2-cffi), compared off the event loop.

A guess costs tens of milliseconds and ~19 MiB (OWASP's minimum Argon2id parameters), so even
a copy of the database does not make the password cheap to guess; the comparison runs in a
worker thread, at most `CONCURRENT_CHECKS` at a time per process, so sign-in attempts cannot
stall the requests the gateway is there for.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

CONCURRENT_CHECKS = 2

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_checks: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def matches(password_hash: str, presented: str) -> bool:
    """Whether `presented` is the password `password_hash` was made from (blocking)."""
    try:
        return _hasher.verify(password_hash, presented)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def _semaphore() -> asyncio.Semaphore:
    global _checks
    loop = asyncio.get_running_loop()
    if _checks is None or _checks[0] is not loop:
        _checks = (loop, asyncio.Semaphore(CONCURRENT_CHECKS))
    return _checks[1]


async def check(password_hash: str, presented: str) -> bool:
    """`matches`, in a worker thread, a few at a time."""
    async with _semaphore():
        return await asyncio.to_thread(matches, password_hash, presented)
