"""Authorization codes, JWT-shaped access tokens and rotating refresh tokens (amocrm-api.md §1).

Emulated:
- codes live 20 minutes and exchange once;
- access tokens are JWT-shaped (RS256 header, amoCRM's payload claims, random signature bytes)
  and expire after `access_token_ttl`;
- every refresh returns a new pair. Rotation is lazy, as Kommo documents: the previous pair
  (its refresh AND access token) keeps working until the new pair is first used — the new
  access token on an API call or the new refresh token on a refresh. Then the previous pair
  and any other pair minted from the same refresh token are revoked. Presenting a revoked
  refresh token → 401 `Token has been revoked`.
Assumptions: the old access token is revoked together with the old refresh token (Kommo does not
say); error hints are league/oauth2-server's, which amoCRM's bodies match.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from amogate.amocrm.sandbox.clock import Clock
from amogate.amocrm.sandbox.config import SandboxConfig
from amogate.amocrm.sandbox.seed import ADMIN_USER_ID

CODE_TTL_S = 20 * 60
OAUTH_PROBLEM_TYPE = "https://developers.amocrm.ru/v3/errors/OAuthProblemJson"
SCOPES = ["crm", "files", "files_delete", "notifications", "push_notifications"]


class OAuthProblem(Exception):
    """An OAuth failure rendered as amoCRM's problem JSON (§1.7)."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("hint") or body.get("title"))
        self.status = status
        self.body = body


def invalid_request(hint: str, status: int = 400) -> OAuthProblem:
    return OAuthProblem(
        status,
        {
            "hint": hint,
            "title": "Некорректный запрос",
            "type": OAUTH_PROBLEM_TYPE,
            "status": status,
            "detail": "В запросе отсутствует ряд параметров или параметры невалидны",
        },
    )


def invalid_client() -> OAuthProblem:
    return OAuthProblem(
        401,
        {
            "title": "Некорректный клиент",
            "type": OAUTH_PROBLEM_TYPE,
            "status": 401,
            "detail": "Авторизация клиента не прошла",
        },
    )


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def mint_jwt(config: SandboxConfig, issued_at: float, ttl: int) -> str:
    """A JWT-shaped token with amoCRM's claims; the signature is random bytes (never checked)."""
    header = {"typ": "JWT", "alg": "RS256"}
    now = int(issued_at)
    payload = {
        "aud": config.client_id,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "sub": str(ADMIN_USER_ID),
        "grant_type": "",
        "account_id": config.account_id,
        "base_domain": "amocrm.ru",
        "version": 2,
        "scopes": SCOPES,
        # Real tokens name the API host here; the sandbox names itself so clients that follow
        # `api_domain` (the PHP library does) stay on the sandbox.
        "api_domain": config.referer,
    }
    parts = [
        _b64url(json.dumps(header, separators=(",", ":")).encode()),
        _b64url(json.dumps(payload, separators=(",", ":")).encode()),
        _b64url(secrets.token_bytes(256)),
    ]
    return ".".join(parts)


def make_long_lived_token(
    config: SandboxConfig, issued_at: float, ttl: int = 5 * 365 * 86400
) -> str:
    """A JWT-shaped long-lived token to put in `SandboxConfig.long_lived_token`."""
    return mint_jwt(config, issued_at, ttl)


@dataclass
class TokenPair:
    pair_id: int
    access_token: str
    refresh_token: str
    access_expires_at: float
    refresh_expires_at: float
    parent_id: int | None
    used: bool = False
    revoked: bool = False
    refreshed: bool = False


@dataclass
class AuthCode:
    code: str
    client_id: str
    issued_at: float
    used: bool = False


@dataclass
class OAuthStats:
    codes_issued: int = 0
    codes_exchanged: int = 0
    codes_rejected: int = 0
    refreshes_ok: int = 0
    refreshes_rejected: int = 0
    # A refresh token presented after it was revoked: the symptom of a refresh race.
    revoked_refresh_presented: int = 0
    # A refresh token presented again while still in its grace period (not yet revoked).
    refresh_reused_in_grace: int = 0
    revoked_access_presented: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class TokenStore:
    config: SandboxConfig
    clock: Clock
    codes: dict[str, AuthCode] = field(default_factory=dict)
    pairs: dict[int, TokenPair] = field(default_factory=dict)
    by_access: dict[str, TokenPair] = field(default_factory=dict)
    by_refresh: dict[str, TokenPair] = field(default_factory=dict)
    stats: OAuthStats = field(default_factory=OAuthStats)
    long_lived_expired: bool = False

    def clear(self) -> None:
        self.codes.clear()
        self.pairs.clear()
        self.by_access.clear()
        self.by_refresh.clear()
        self.long_lived_expired = False

    def issue_code(self, client_id: str) -> str:
        code = "def50200" + secrets.token_hex(96)
        self.codes[code] = AuthCode(code, client_id, self.clock())
        self.stats.codes_issued += 1
        return code

    def exchange_code(self, code: str, client_id: str) -> TokenPair:
        found = self.codes.get(code)
        try:
            if found is None:
                raise invalid_request("Cannot decrypt the authorization code")
            if self.clock() - found.issued_at >= CODE_TTL_S:
                raise invalid_request("Authorization code has expired")
            if found.used:
                raise invalid_request("Authorization code has been revoked")
            if found.client_id != client_id:
                raise invalid_request("Authorization code was not issued to this client")
        except OAuthProblem:
            self.stats.codes_rejected += 1
            raise
        found.used = True
        self.stats.codes_exchanged += 1
        return self._issue_pair(parent_id=None)

    def refresh(self, refresh_token: str) -> TokenPair:
        pair = self.by_refresh.get(refresh_token)
        try:
            if pair is None:
                raise invalid_request("Cannot decrypt the refresh token", status=401)
            if pair.revoked:
                self.stats.revoked_refresh_presented += 1
                raise invalid_request("Token has been revoked", status=401)
            if self.clock() >= pair.refresh_expires_at:
                raise invalid_request("Token has expired", status=401)
        except OAuthProblem:
            self.stats.refreshes_rejected += 1
            raise
        self._mark_used(pair)
        if pair.refreshed:
            self.stats.refresh_reused_in_grace += 1
        pair.refreshed = True
        self.stats.refreshes_ok += 1
        return self._issue_pair(parent_id=pair.pair_id)

    def authenticate(self, bearer: str) -> bool:
        """True when `bearer` may call the API now; a first use revokes the previous pair."""
        long_lived = self.config.long_lived_token
        if long_lived is not None and secrets.compare_digest(bearer, long_lived):
            return not self.long_lived_expired
        pair = self.by_access.get(bearer)
        if pair is None:
            return False
        if pair.revoked:
            self.stats.revoked_access_presented += 1
            return False
        if self.clock() >= pair.access_expires_at:
            return False
        self._mark_used(pair)
        return True

    def expire_access_tokens(self, include_long_lived: bool = False) -> int:
        """Make every current access token expired now; returns how many were live."""
        now = self.clock()
        live = 0
        for pair in self.pairs.values():
            if pair.access_expires_at > now:
                live += 1
                pair.access_expires_at = now
        if include_long_lived:
            self.long_lived_expired = True
        return live

    def _issue_pair(self, parent_id: int | None) -> TokenPair:
        now = self.clock()
        pair = TokenPair(
            pair_id=len(self.pairs) + 1,
            access_token=mint_jwt(self.config, now, self.config.access_token_ttl),
            refresh_token="def50200" + secrets.token_hex(192),
            access_expires_at=now + self.config.access_token_ttl,
            refresh_expires_at=now + self.config.refresh_token_ttl,
            parent_id=parent_id,
        )
        self.pairs[pair.pair_id] = pair
        self.by_access[pair.access_token] = pair
        self.by_refresh[pair.refresh_token] = pair
        return pair

    def _mark_used(self, pair: TokenPair) -> None:
        if pair.used:
            return
        pair.used = True
        if pair.parent_id is None:
            return
        # The new pair is in use: its parent and any sibling minted from the same refresh
        # token are now stale.
        self.pairs[pair.parent_id].revoked = True
        for other in self.pairs.values():
            if other.parent_id == pair.parent_id and other is not pair and not other.used:
                other.revoked = True
