"""Admin session cookies: signed, stateless, ended all at once by a generation counter.

The cookie holds `{"c": csrf token, "t": issued at, "g": generation}` as base64 JSON plus an
HMAC-SHA256 signature. The signing key is a random secret generated once and kept in the
database (`admin_state`), shared by every instance — not derived from ADMIN_PASSWORD or
API_KEY, so a cookie says nothing about either (no offline guessing of the password from a
cookie, whoever holds API_KEY). A session is valid for `SESSION_TTL` from sign-in and while its
generation is the current one: log-out and a new ADMIN_PASSWORD move the generation on, which
ends every session at once.

Before sign-in nothing is signed: the sign-in form is protected by a separate random cookie
whose value the form must echo (double submit), and signing in issues a new session with a new
CSRF token (no fixation).
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
LOGIN_COOKIE = "amogate_login"
SESSION_TTL = 8 * 3600
CSRF_FIELD = "csrf"
# Instances' clocks may differ a little: a session issued "in the future" by this much is fine.
CLOCK_SKEW = 60


@dataclass(frozen=True)
class Session:
    """A signed-in admin's session."""

    csrf: str
    issued_at: int
    generation: int

    @classmethod
    def new(cls, now: float, generation: int) -> Session:
        return cls(csrf=secrets.token_urlsafe(24), issued_at=int(now), generation=generation)

    def csrf_matches(self, presented: str | None) -> bool:
        return tokens_match(presented, self.csrf)


def new_login_token() -> str:
    """The sign-in form's anti-forgery token (a cookie and a hidden field)."""
    return secrets.token_urlsafe(24)


def tokens_match(presented: str | None, expected: str | None) -> bool:
    return (
        presented is not None
        and expected is not None
        and hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    def __init__(self, secret: str, *, ttl: int = SESSION_TTL) -> None:
        self._key = hashlib.sha256(b"amogate-admin-session\x00" + secret.encode("utf-8")).digest()
        self.ttl = ttl

    def __repr__(self) -> str:
        return "SessionSigner(key=<hidden>)"

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())

    def dumps(self, session: Session) -> str:
        body = {"c": session.csrf, "t": session.issued_at, "g": session.generation}
        payload = _b64(json.dumps(body, separators=(",", ":")).encode("utf-8"))
        return f"{payload}.{self._sign(payload)}"

    def loads(self, value: str | None, *, now: float) -> Session | None:
        """The session in a cookie value; None when missing, forged, malformed or expired.
        (Whether its generation is still current is the caller's check.)"""
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
        csrf, issued_at, generation = body.get("c"), body.get("t"), body.get("g")
        if not (
            isinstance(csrf, str)
            and isinstance(issued_at, int)
            and isinstance(generation, int)
            and not isinstance(generation, bool)
        ):
            return None
        if not issued_at - CLOCK_SKEW <= now < issued_at + self.ttl:
            return None
        return Session(csrf=csrf, issued_at=issued_at, generation=generation)
