"""X-API-KEY authentication and scopes.

The admin key comes from API_KEY. Keys are compared as SHA-256 digests with
`hmac.compare_digest`, so neither the comparison time nor an early mismatch reveals how much of
a guess was right.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from fastapi import Request

from amogate.errors import AuthenticationFailed, Forbidden

SCOPES = ("leads:write", "info:read", "deliveries:read", "admin")
ADMIN_KEY_ID = "admin"

# The comparison used for every key check; a test asserts it stays constant-time.
compare_digest = hmac.compare_digest


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: the admin key or an issued key with its scopes."""

    key_id: str
    name: str
    scopes: frozenset[str] = field(default_factory=lambda: frozenset(SCOPES))
    origins: tuple[str, ...] = ()
    rate_per_minute: int | None = None

    def require(self, scope: str) -> None:
        if "admin" not in self.scopes and scope not in self.scopes:
            raise Forbidden(f"API key lacks scope {scope}")


class ApiKeyAuthenticator:
    def __init__(self, admin_key: str) -> None:
        self._admin_digest = key_digest(admin_key)

    def authenticate(self, presented: str | None) -> Principal:
        if not presented:
            raise AuthenticationFailed()
        if compare_digest(key_digest(presented), self._admin_digest):
            return Principal(key_id=ADMIN_KEY_ID, name="admin")
        raise AuthenticationFailed()


def authenticator(request: Request) -> ApiKeyAuthenticator:
    auth = request.app.state.authenticator
    assert isinstance(auth, ApiKeyAuthenticator)
    return auth


async def current_principal(request: Request) -> Principal:
    """FastAPI dependency for every /api/v1 route."""
    principal = authenticator(request).authenticate(request.headers.get("x-api-key"))
    request.state.principal = principal
    return principal
