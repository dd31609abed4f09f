"""Tokens kept alive: proactive and on-401 refresh, at most one refresh per account in flight.

Refresh tokens are single-use, so two refreshes with the same token would kill the connection
("Token has been revoked"). A refresh therefore runs under two locks: an asyncio lock for the
coroutines of this process, and the account row's database lock for every process and host
sharing the database (`SELECT ... FOR UPDATE` on PostgreSQL; `BEGIN IMMEDIATE` on SQLite).
After taking them the row is read again: if another process already refreshed, its tokens are
used and no call is made. The new pair is committed before anything uses it. A failed refresh
never deletes stored tokens; a revoked refresh token marks the account `needs_reauthorization`.

The original gateway's `storage/tokens.json` works both ways. At start it is imported when the
database has no token, and again when it is newer than the pair the database holds and holds
another pair (the original's re-authorization: write a fresh tokens.json, restart); which of
these applies is decided in one place, `tokens_file_decision`. `export_pair` writes the current
pair in the same format, for going back to the PHP gateway.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import structlog

from amogate.amocrm import jwt, oauth
from amogate.amocrm.errors import AmoAuthError, AmoRefreshRevokedError, AmoTransientError
from amogate.storage import accounts, relay
from amogate.storage.db import Database

log = structlog.get_logger("amogate.tokens")

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class OAuthClient:
    """The integration's credentials, as registered in amoCRM."""

    client_id: str
    client_secret: str
    redirect_uri: str
    base_url: str | None  # AMO_BASE_URL override (the sandbox), else None
    amo_domain: str

    def token_url(self, base_domain: str | None) -> str:
        return oauth.token_url(base_domain or self.amo_domain, base_url=self.base_url)


class NotConnected(AmoAuthError):
    """No usable token: the account was never connected or needs reauthorization."""


class NeedsReauthorization(NotConnected):
    """The stored pair no longer works (amoCRM refused to refresh it): connect again."""


@dataclass(frozen=True)
class TokenFile:
    """The original gateway's storage/tokens.json as read from disk."""

    path: Path
    access_token: str
    refresh_token: str
    expires_at: datetime | None
    base_domain: str | None
    modified_at: datetime

    def __repr__(self) -> str:  # never print a token
        return f"TokenFile(path={str(self.path)!r}, modified_at={self.modified_at!r})"

    @property
    def fingerprint(self) -> str:
        """A hash of the refresh token: tells pairs apart without storing the token twice."""
        return hashlib.sha256(self.refresh_token.encode("utf-8")).hexdigest()


def tokens_file_decision(file: TokenFile, row: accounts.AccountRow) -> tuple[bool, str]:
    """Whether tokens.json replaces what the database holds, and why (for the log line).

    Imported: into an empty database; or when the file is newer than the pair the database
    holds (its last refresh or import) and holds another pair that was never imported before.
    Not imported: the same pair, a file older than the stored pair (amogate refreshed since),
    a stale file copied back (its pair was imported before), or a long-lived token in use."""
    if not row.has_token:
        return True, "the database holds no token"
    if row.token_kind == accounts.LONG_LIVED:
        return False, "a long-lived token is in use"
    if (file.access_token, file.refresh_token) == (row.access_token, row.refresh_token):
        return False, "the database holds this pair already"
    if file.fingerprint == row.tokens_file_fingerprint:
        return False, "this pair was imported before and has been refreshed since"
    stored = [t for t in (row.refreshed_at, row.tokens_file_imported_at) if t is not None]
    stored_at = max(stored) if stored else row.updated_at
    if file.modified_at <= stored_at:
        return False, "the file is older than the pair in the database"
    return True, "the file is newer than the pair in the database and holds another pair"


class TokenManager:
    """Implements `amogate.amocrm.auth.TokenProvider` on top of the database."""

    def __init__(
        self,
        database: Database,
        oauth_client: OAuthClient,
        http: httpx.AsyncClient,
        *,
        account_key: str = accounts.DEFAULT_ACCOUNT,
        refresh_margin: timedelta = timedelta(minutes=10),
        clock: Clock = utcnow,
    ) -> None:
        self.database = database
        self.oauth_client = oauth_client
        self.http = http
        self.account_key = account_key
        self.refresh_margin = refresh_margin
        self.clock = clock
        self._lock = asyncio.Lock()
        self._cached: accounts.AccountRow | None = None
        self.refresh_count = 0  # refreshes this process performed (metrics, tests)

    def __repr__(self) -> str:
        return f"TokenManager(account={self.account_key!r})"

    # --- TokenProvider ---------------------------------------------------------------------

    async def access_token(self) -> str:
        row = self._cached
        # A cached row that is not usable is re-read: another process (or `amogate auth
        # exchange`) may have reconnected the account since.
        if row is None or row.state != accounts.CONNECTED or self._needs_refresh(row):
            row = await self._read()
            if self._needs_refresh(row):
                try:
                    row = await self._refresh(reason="expiry", unless_token_changed_from=None)
                except AmoTransientError:
                    # amoCRM's token endpoint is down; the current token may still be good.
                    if not self._expired(row):
                        log.warning("oauth.refresh.deferred", reason="transient")
                        return self._usable(row)
                    raise
        return self._usable(row)

    async def refresh_after_401(self, rejected_token: str) -> str | None:
        row = await self._read()
        if row.token_kind == accounts.LONG_LIVED:
            return None  # nothing can refresh a long-lived token
        if (
            row.access_token
            and row.access_token != rejected_token
            and row.state == accounts.CONNECTED
        ):
            return row.access_token  # someone already refreshed
        try:
            row = await self._refresh(reason="401", unless_token_changed_from=rejected_token)
        except AmoAuthError:
            return None
        return self._usable(row)

    # --- operations ------------------------------------------------------------------------

    async def refresh_now(
        self, reason: str = "manual", *, unless_refreshed_after: datetime | None = None
    ) -> accounts.AccountRow:
        """Refresh now (CLI, keeper); still one at a time across processes. With
        `unless_refreshed_after`, skip when another process refreshed after that moment."""
        return await self._refresh(
            reason=reason,
            unless_token_changed_from=None,
            force=True,
            unless_refreshed_after=unless_refreshed_after,
        )

    async def status(self) -> accounts.AccountRow | None:
        async with self.database.read() as conn:
            return await accounts.get(conn, self.account_key)

    def forget_cache(self) -> None:
        self._cached = None

    async def store_pair(
        self,
        pair: oauth.TokenPair,
        *,
        reason: str,
        account_id: int | None = None,
        guard: Callable[[accounts.AccountRow], None] | None = None,
    ) -> accounts.AccountRow:
        """Save a pair obtained by a code exchange (with the amoCRM account id it belongs to).
        `guard` sees the locked current row first and may raise to store nothing."""
        now = self.clock()
        async with self.database.transaction() as conn:
            current = await accounts.lock(conn, self.account_key, now)
            if guard is not None:
                guard(current)
            await accounts.save_tokens(
                conn,
                self.account_key,
                access_token=pair.access_token,
                refresh_token=pair.refresh_token,
                expires_at=pair.expires_at,
                kind=accounts.OAUTH,
                now=now,
                base_domain=pair.base_domain,
            )
            if account_id is not None:
                await accounts.set_account_id(conn, self.account_key, account_id)
            row = await accounts.get(conn, self.account_key)
        assert row is not None
        self._cached = row
        log.info("oauth.tokens.stored", reason=reason, base_domain=pair.base_domain)
        return row

    async def use_long_lived(self, token: str, base_domain: str | None) -> accounts.AccountRow:
        """Install AMO_LONG_LIVED_TOKEN (idempotent: rewritten only when it changed)."""
        now = self.clock()
        async with self.database.transaction() as conn:
            row = await accounts.lock(conn, self.account_key, now)
            if row.access_token != token or row.token_kind != accounts.LONG_LIVED:
                await accounts.save_tokens(
                    conn,
                    self.account_key,
                    access_token=token,
                    refresh_token=None,
                    expires_at=jwt.expires_at(token),
                    kind=accounts.LONG_LIVED,
                    now=now,
                    base_domain=base_domain,
                    refreshed=False,
                )
                log.info("oauth.long_lived_token.installed", expires_at=jwt.expires_at(token))
            row = await accounts.get(conn, self.account_key)  # type: ignore[assignment]
        assert row is not None
        self._cached = row
        return row

    async def import_token_file(self, path: Path) -> bool:
        """Import the original gateway's storage/tokens.json when `tokens_file_decision` says
        so. Returns True when a pair was imported."""
        token_file = await asyncio.to_thread(read_token_file, path)
        if token_file is None:
            return False
        base_domain = token_file.base_domain
        if base_domain is not None and not oauth.account_host_allowed(
            base_domain,
            known_domain=self.oauth_client.amo_domain or None,
            base_url=self.oauth_client.base_url,
        ):
            # The same rule as the OAuth callback's referer: a file naming another account
            # would send our client secret (on the first refresh) and every lead there.
            log.error(
                "oauth.tokens_file.refused",
                path=str(path),
                base_domain=base_domain[:120],
                reason="base_domain is not the account this gateway is set up for "
                "(AMO_DOMAIN, or an amoCRM/Kommo host)",
            )
            return False
        now = self.clock()
        async with self.database.transaction() as conn:
            row = await accounts.lock(conn, self.account_key, now)
            wanted, reason = tokens_file_decision(token_file, row)
            if not wanted:
                log.info("oauth.tokens_file.skipped", path=str(path), reason=reason)
                return False
            await accounts.save_tokens(
                conn,
                self.account_key,
                access_token=token_file.access_token,
                refresh_token=token_file.refresh_token,
                expires_at=token_file.expires_at or jwt.expires_at(token_file.access_token),
                kind=accounts.OAUTH,
                now=now,
                base_domain=token_file.base_domain,
                refreshed=False,
            )
            await accounts.mark_tokens_file_imported(
                conn, self.account_key, now=now, fingerprint=token_file.fingerprint
            )
        self._cached = None
        log.info(
            "oauth.tokens_file.imported",
            path=str(path),
            reason=reason,
            expires_at=token_file.expires_at,
        )
        return True

    async def export_pair(self, path: Path) -> accounts.AccountRow:
        """Write the current pair to `path` in the original gateway's tokens.json format
        (`access_token`, `refresh_token`, `expires_at` in unix seconds), readable by its owner
        only. Raises `NotConnected` when there is no refreshable pair to write."""
        row = await self.status()
        if row is None or not row.has_token or not row.refresh_token:
            if row is not None and row.token_kind == accounts.LONG_LIVED:
                raise NotConnected(
                    "a long-lived token is in use: it has no refresh token to export"
                )
            raise NotConnected("amoCRM is not connected: there is no token pair to export")
        if row.state != accounts.CONNECTED:
            raise NeedsReauthorization(
                "amoCRM needs reauthorization: the stored pair no longer works"
            )
        expires = row.access_expires_at or jwt.expires_at(row.access_token or "")
        content = {
            "access_token": row.access_token,
            "refresh_token": row.refresh_token,
            "expires_at": int(expires.timestamp()) if expires else 0,
        }
        await asyncio.to_thread(_write_private_json, path, content)
        log.info("oauth.tokens_file.exported", path=str(path), expires_at=expires)
        return row

    # --- internals -------------------------------------------------------------------------

    def _needs_refresh(self, row: accounts.AccountRow) -> bool:
        if row.token_kind == accounts.LONG_LIVED or row.state != accounts.CONNECTED:
            return False
        if not row.refresh_token:
            return False
        expires = row.access_expires_at
        if expires is None:
            return True
        return expires - self._margin(row) <= self.clock()

    def _margin(self, row: accounts.AccountRow) -> timedelta:
        """How early to refresh: `refresh_margin`, but at most a fifth of the token's lifetime,
        so a short-lived token is not refreshed on every call."""
        issued = row.refreshed_at or row.updated_at
        if row.access_expires_at is None or issued is None:
            return self.refresh_margin
        lifetime = row.access_expires_at - issued
        return max(timedelta(0), min(self.refresh_margin, lifetime / 5))

    def _expired(self, row: accounts.AccountRow) -> bool:
        expires = row.access_expires_at
        return expires is not None and expires <= self.clock()

    def _usable(self, row: accounts.AccountRow) -> str:
        if row.state == accounts.NEEDS_REAUTHORIZATION:
            raise NeedsReauthorization(
                "amoCRM needs reauthorization: open /oauth/authorize "
                f"({row.state_reason or 'the refresh token was rejected'})",
            )
        if not row.access_token:
            raise NotConnected("amoCRM is not connected: open /oauth/authorize")
        return row.access_token

    async def _read(self) -> accounts.AccountRow:
        async with self.database.read() as conn:
            row = await accounts.get(conn, self.account_key)
        if row is None:
            raise NotConnected("amoCRM is not connected: open /oauth/authorize")
        self._cached = row
        return row

    async def _refresh(
        self,
        *,
        reason: str,
        unless_token_changed_from: str | None,
        force: bool = False,
        unless_refreshed_after: datetime | None = None,
    ) -> accounts.AccountRow:
        async with self._lock:
            failure: AmoAuthError | None = None
            async with self.database.transaction() as conn:
                row = await accounts.lock(conn, self.account_key, self.clock())
                now = self.clock()  # after the lock: the wait for it may have been long
                # Someone else (a coroutine here, another process) may have refreshed already.
                if unless_token_changed_from is not None:
                    if row.access_token and row.access_token != unless_token_changed_from:
                        self._cached = row
                        return row
                elif (not force and not self._needs_refresh(row)) or (
                    unless_refreshed_after is not None
                    and row.refreshed_at is not None
                    and row.refreshed_at > unless_refreshed_after
                ):
                    self._cached = row
                    return row
                if (
                    row.token_kind == accounts.LONG_LIVED
                    or not row.refresh_token
                    or row.state != accounts.CONNECTED
                ):
                    self._cached = row
                    return row
                try:
                    pair = await oauth.refresh_tokens(
                        self.http,
                        token_url=self.oauth_client.token_url(row.base_domain),
                        client_id=self.oauth_client.client_id,
                        client_secret=self.oauth_client.client_secret,
                        redirect_uri=self.oauth_client.redirect_uri,
                        refresh_token=row.refresh_token,
                    )
                except AmoAuthError as exc:
                    # amoCRM will not refresh this pair again: stop using it, keep it stored
                    # (for the operator to inspect), and commit the state before raising.
                    await accounts.set_state(
                        conn, self.account_key, accounts.NEEDS_REAUTHORIZATION, exc.detail, now
                    )
                    await relay.reauthorization_needed(conn, self.account_key, exc.detail, now)
                    failure = exc
                else:
                    # The new pair is committed (end of this block) before anything uses it.
                    await accounts.save_tokens(
                        conn,
                        self.account_key,
                        access_token=pair.access_token,
                        refresh_token=pair.refresh_token,
                        expires_at=pair.expires_at,
                        kind=accounts.OAUTH,
                        now=now,
                        base_domain=row.base_domain or pair.base_domain,
                    )
                fresh = await accounts.get(conn, self.account_key)
            assert fresh is not None
            self._cached = fresh
            if failure is not None:
                # ERROR: it lands in storage/error.log, where the original gateway's users look.
                log.error(
                    "account.needs_reauthorization",
                    account=self.account_key,
                    cause="revoked" if isinstance(failure, AmoRefreshRevokedError) else "rejected",
                    refresh_reason=reason,
                    status=failure.status,
                    detail=failure.detail,
                    action="reconnect: open /admin or /oauth/authorize, or run `amogate auth url`",
                )
                raise failure
            self.refresh_count += 1
            log.info("oauth.refresh.done", reason=reason, expires_at=fresh.access_expires_at)
            return fresh


def _parse_expiry(raw: object) -> datetime | None:
    """`expires_at` of tokens.json: unix seconds (number or digits) or an ISO 8601 time."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return datetime.fromtimestamp(float(raw), tz=UTC)
    if not isinstance(raw, str) or not raw.strip():
        return None
    text = raw.strip()
    if text.replace(".", "", 1).isdigit():
        return datetime.fromtimestamp(float(text), tz=UTC)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def read_token_file(path: Path) -> TokenFile | None:
    """The original gateway's tokens.json, or None when absent or unusable."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        modified = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    except (OSError, ValueError):
        log.warning("oauth.tokens_file.unreadable", path=str(path))
        return None
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), str) and data.get(k) for k in ("access_token", "refresh_token")
    ):
        log.warning("oauth.tokens_file.unreadable", path=str(path))
        return None
    base_domain = data.get("base_domain") or data.get("baseDomain") or None
    return TokenFile(
        path=path,
        access_token=data["access_token"],
        refresh_token=data["refresh_token"],
        expires_at=_parse_expiry(data.get("expires_at") or data.get("expires")),
        base_domain=str(base_domain) if base_domain else None,
        modified_at=modified,
    )


def _write_private_json(path: Path, content: dict[str, Any]) -> None:
    """Write `content` to `path` atomically (a temporary file renamed over it), mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".tokens-", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(content, out, indent=4)
            out.write("\n")
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
