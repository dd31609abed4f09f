"""API keys as a domain: who a key is (`Principal`), what a new key may be, and issuing,
listing and revoking keys. The HTTP check (`api/auth.py`), the admin page (`web/actions.py`)
and the CLI (`commands/keys.py`) all use these rules, so they cannot drift apart.

The admin key comes from API_KEY; other keys are stored as SHA-256 digests. A key belongs to
one amoCRM account and acts on it; the admin (the API_KEY, or a key with the `admin` scope)
may act on another account named in `X-Amo-Account`.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from urllib.parse import urlsplit

import structlog

from amogate.accounts.config import DEFAULT, InvalidAccountName, check_name
from amogate.errors import AuthenticationFailed, Forbidden, RateLimited
from amogate.storage import accounts, api_keys, rate_counters
from amogate.storage.db import Database

SCOPES = ("leads:write", "info:read", "deliveries:read", "admin")
DEFAULT_SCOPES = ("leads:write",)
ADMIN_KEY_ID = "admin"
MAX_NAME = 128
MAX_RATE_PER_MINUTE = 100_000
ACCOUNT_HEADER = "X-Amo-Account"
RATE_WINDOW_S = 60  # per-key rate limits count requests per minute

log = structlog.get_logger("amogate.auth")

# The comparison used for every key check; a test asserts it stays constant-time.
compare_digest = hmac.compare_digest


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: the admin key or an issued key with its scopes, and the amoCRM
    account the call acts on."""

    key_id: str
    name: str
    scopes: frozenset[str] = field(default_factory=lambda: frozenset(SCOPES))
    origins: tuple[str, ...] = ()
    rate_per_minute: int | None = None
    account: str = DEFAULT

    def require(self, scope: str) -> None:
        if "admin" not in self.scopes and scope not in self.scopes:
            raise Forbidden(f"API key lacks scope {scope}")

    @property
    def is_admin_key(self) -> bool:
        return self.key_id == ADMIN_KEY_ID

    @property
    def is_admin(self) -> bool:
        """The admin key, or an issued key with the `admin` scope."""
        return "admin" in self.scopes

    def acting_on(self, requested: str | None) -> Principal:
        """The principal acting on the account named in `X-Amo-Account` (None: its own).
        Only the admin may act on an account other than the key's own."""
        if not requested or requested == self.account:
            return self
        if not self.is_admin:
            raise Forbidden(
                f"This API key belongs to another account: {ACCOUNT_HEADER} may only name "
                "the key's own account"
            )
        return replace(self, account=requested)


def admin_principal() -> Principal:
    return Principal(key_id=ADMIN_KEY_ID, name="admin")


def principal_of(row: api_keys.ApiKeyRow) -> Principal:
    return Principal(
        key_id=row.id,
        name=row.name,
        scopes=frozenset(row.scopes),
        origins=row.origins,
        rate_per_minute=row.rate_per_minute,
        account=row.account_key,
    )


# --- checking presented keys ------------------------------------------------------------------


class ApiKeyAuthenticator:
    """Checks presented keys. `clock` (unix seconds) is replaceable for tests of the windows."""

    def __init__(self, admin_key: str, *, clock: Callable[[], float] = time.time) -> None:
        self._admin_digest = key_digest(admin_key)
        self.clock = clock

    def authenticate(self, presented: str | None) -> Principal:
        """The admin key only (no database needed)."""
        if not presented:
            raise AuthenticationFailed()
        if compare_digest(key_digest(presented), self._admin_digest):
            return admin_principal()
        raise AuthenticationFailed()

    async def resolve(
        self,
        database: Database,
        presented: str | None,
        *,
        origin: str | None,
        global_origins: Collection[str],
        scope: str | None,
    ) -> Principal:
        """Authenticate the admin key or an issued key, then apply the key's origin list, the
        route's scope and the key's rate limit, in that order."""
        if not presented:
            raise AuthenticationFailed()
        digest = key_digest(presented)
        if compare_digest(digest, self._admin_digest):
            principal = admin_principal()
            if scope is not None:
                principal.require(scope)
            return principal
        async with database.read() as conn:
            row = await api_keys.by_hash(conn, digest)
        if row is None or not compare_digest(row.key_hash, digest):
            raise AuthenticationFailed()
        if row.revoked:
            log.info("auth.revoked_key_used", key_name=row.name)
            raise AuthenticationFailed()
        principal = principal_of(row)
        if origin is not None and origin not in (row.origins or tuple(global_origins)):
            raise Forbidden("Origin not allowed for this API key")
        if scope is not None:
            principal.require(scope)
        await self._count_use(database, row)
        return principal

    async def _count_use(self, database: Database, row: api_keys.ApiKeyRow) -> None:
        now_s = self.clock()
        now = datetime.fromtimestamp(now_s, UTC)
        touch = api_keys.needs_touch(row, now)
        if row.rate_per_minute is None and not touch:
            return
        count = 0
        window = int(now_s // RATE_WINDOW_S) * RATE_WINDOW_S
        async with database.transaction() as conn:
            if row.rate_per_minute is not None:
                count = await rate_counters.hit(conn, f"api_key:{row.id}", window)
            if touch:
                await api_keys.touch(conn, row.id, now)
        if row.rate_per_minute is not None and count > row.rate_per_minute:
            retry_after = max(1, math.ceil(window + RATE_WINDOW_S - now_s))
            raise RateLimited("Rate limit exceeded", retry_after=retry_after)


# --- issuing keys ------------------------------------------------------------------------------


class KeyProblem(ValueError):
    """A refused key request: `text` for the CLI, `message_id` + `values` for the admin page."""

    def __init__(self, message_id: str, text: str, values: dict[str, str] | None = None) -> None:
        super().__init__(text)
        self.message_id = message_id
        self.text = text
        self.values = values or {}


@dataclass(frozen=True)
class KeyRequest:
    name: str
    scopes: list[str]
    origins: list[str]
    rate_per_minute: int | None
    account: str = DEFAULT


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    key: str = field(repr=False)  # shown once, never stored


def parse_origin(text: str) -> str:
    origin = text.strip().rstrip("/")
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
        raise KeyProblem(
            "keys.error_origin",
            f"origin {text[:100]!r} must look like https://site.uz",
            {"origin": origin[:100]},
        )
    return origin


def key_request(
    name: str,
    scopes: Iterable[str],
    origins: Iterable[str],
    rate_per_minute: int | None,
    account: str = DEFAULT,
) -> KeyRequest:
    """A valid request for a new key, or `KeyProblem` saying what is wrong."""
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise KeyProblem("keys.error_name", f"the key name must be 1 to {MAX_NAME} characters")
    wanted = list(scopes)
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown or not wanted:
        raise KeyProblem(
            "keys.error_scopes",
            f"unknown scope {unknown[0]!r}: use {', '.join(SCOPES)}"
            if unknown
            else "choose at least one scope",
        )
    chosen = [s for s in SCOPES if s in wanted]
    cleaned = [parse_origin(o) for o in origins if o.strip()]
    if rate_per_minute is not None and not 1 <= rate_per_minute <= MAX_RATE_PER_MINUTE:
        raise KeyProblem(
            "keys.error_rate", f"the rate must be 1 to {MAX_RATE_PER_MINUTE} requests per minute"
        )
    try:
        check_name(account)
    except InvalidAccountName as exc:
        raise KeyProblem("keys.error_account", str(exc), {"account": account[:60]}) from None
    return KeyRequest(name, chosen, list(dict.fromkeys(cleaned)), rate_per_minute, account)


async def create_key(database: Database, wanted: KeyRequest) -> IssuedKey:
    """Issue the key; `KeyProblem` when the name is taken or the account does not exist."""
    key = api_keys.generate_key()
    key_id = api_keys.new_id()
    async with database.transaction() as conn:
        if wanted.account != DEFAULT:
            row = await accounts.get(conn, wanted.account)
            if row is None or row.added_at is None:
                raise KeyProblem(
                    "keys.error_account",
                    f"no account named {wanted.account!r}: add it with `amogate accounts add`",
                    {"account": wanted.account},
                )
        if await api_keys.by_name(conn, wanted.name) is not None:
            raise KeyProblem(
                "keys.error_taken",
                f"a key named {wanted.name!r} already exists",
                {"name": wanted.name[:100]},
            )
        await api_keys.create(
            conn,
            key_id=key_id,
            name=wanted.name,
            key_hash=key_digest(key),
            scopes=wanted.scopes,
            origins=wanted.origins,
            rate_per_minute=wanted.rate_per_minute,
            account_key=wanted.account,
            now=datetime.now(UTC),
        )
    return IssuedKey(key_id, key)


async def list_keys(database: Database) -> list[api_keys.ApiKeyRow]:
    """Every key, active ones first, newest first within each group."""
    async with database.read() as conn:
        rows = await api_keys.list_all(conn)
    return sorted(rows, key=lambda r: (r.revoked, -r.created_at.timestamp()))


async def revoke_key(database: Database, name_or_id: str) -> api_keys.ApiKeyRow | None:
    async with database.transaction() as conn:
        return await api_keys.revoke(conn, name_or_id, datetime.now(UTC))
