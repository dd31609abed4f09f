"""The admin session: a signed cookie, no server-side store.

The cookie holds `{"a": authenticated, "c": csrf token, "t": issued at}` as base64 JSON plus an
HMAC-SHA256 signature. The signing key is derived from ADMIN_PASSWORD and API_KEY (both secret,
both the same on every instance), so any instance accepts a session another one issued, and
changing either setting signs every admin out. A session lasts `SESSION_TTL` from sign-in.
Before sign-in the same cookie carries an anonymous session, whose CSRF token protects the login
form; signing in issues a new session with a new token (no fixation).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

SESSION_COOKIE = "amogate_admin"
SESSION_TTL = 8 * 3600
CSRF_FIELD = "csrf"
# Instances' clocks may differ a little: a session issued "in the future" by this much is fine.
CLOCK_SKEW = 60


@dataclass(frozen=True)
class Session:
    csrf: str
    authenticated: bool
    issued_at: int

    @classmethod
    def anonymous(cls, now: float) -> Session:
        return cls(csrf=secrets.token_urlsafe(24), authenticated=False, issued_at=int(now))

    @classmethod
    def signed_in(cls, now: float) -> Session:
        return cls(csrf=secrets.token_urlsafe(24), authenticated=True, issued_at=int(now))

    def csrf_matches(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(
            presented.encode("utf-8"), self.csrf.encode("utf-8")
        )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    def __init__(self, admin_password: str, server_secret: str, *, ttl: int = SESSION_TTL) -> None:
        self._key = hmac.new(
            server_secret.encode("utf-8"),
            b"amogate-admin-session\x00" + admin_password.encode("utf-8"),
            hashlib.sha256,
        ).digest()
        self._password_digest = hashlib.sha256(admin_password.encode("utf-8")).digest()
        self.ttl = ttl

    def password_matches(self, presented: str) -> bool:
        """Constant-time: digests of equal length are compared, never the raw strings."""
        digest = hashlib.sha256(presented.encode("utf-8")).digest()
        return hmac.compare_digest(digest, self._password_digest)

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())

    def dumps(self, session: Session) -> str:
        body = {"a": session.authenticated, "c": session.csrf, "t": session.issued_at}
        payload = _b64(json.dumps(body, separators=(",", ":")).encode("utf-8"))
        return f"{payload}.{self._sign(payload)}"

    def loads(self, value: str | None, *, now: float) -> Session | None:
        """The session in a cookie value; None when missing, forged, malformed or expired."""
        if not value or value.count(".") != 1:
            return None
        payload, signature = value.split(".")
        try:
            expected = self._sign(payload)
        except UnicodeEncodeError:
            return None
        if not hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8")):
            return None
        try:
            body = json.loads(_unb64(payload))
        except (ValueError, binascii.Error):
            return None
        if not isinstance(body, dict):
            return None
        csrf, authenticated, issued_at = body.get("c"), body.get("a"), body.get("t")
        if not (
            isinstance(csrf, str) and isinstance(authenticated, bool) and isinstance(issued_at, int)
        ):
            return None
        if not issued_at - CLOCK_SKEW <= now < issued_at + self.ttl:
            return None
        return Session(csrf=csrf, authenticated=authenticated, issued_at=issued_at)
