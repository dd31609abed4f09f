"""`AdminAccess`: ADMIN_PASSWORD and admin sessions for one app, backed by `admin_state`.

`start()` (in the app's lifespan) makes sure the shared row exists, checks ADMIN_PASSWORD
against the stored hash and, when the password is new, stores its hash and moves the session
generation on, so every session made with the old password ends. After that a request's cookie
is checked by its signature, age and generation (one small read, so a log-out on any instance
ends the session everywhere at once).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import structlog

from amogate.access import passwords
from amogate.access.sessions import Session, SessionSigner
from amogate.storage import admin_state
from amogate.storage.db import Database

log = structlog.get_logger("amogate.admin")


class AdminNotReady(RuntimeError):
    """`start()` has not run (the app's lifespan is not running)."""


class AdminAccess:
    def __init__(self, password: str | None) -> None:
        self._password = password or None
        self._hash: str | None = None
        self._signer: SessionSigner | None = None
        self._database: Database | None = None

    def __repr__(self) -> str:
        return f"AdminAccess(enabled={self.enabled})"

    @property
    def enabled(self) -> bool:
        return self._password is not None

    @property
    def signer(self) -> SessionSigner:
        if self._signer is None:
            raise AdminNotReady("the admin page is not started")
        return self._signer

    @property
    def database(self) -> Database:
        if self._database is None:
            raise AdminNotReady("the admin page is not started")
        return self._database

    async def start(self, database: Database) -> None:
        if self._password is None:
            return
        self._database = database
        now = datetime.now(UTC)
        async with database.transaction() as conn:
            state = await admin_state.ensure(conn, new_secret=secrets.token_urlsafe(32), now=now)
        stored = state.password_hash
        if stored is not None and await passwords.check(stored, self._password):
            self._hash = stored
            if passwords.needs_rehash(stored):
                self._hash = passwords.hash_password(self._password)
                async with database.transaction() as conn:
                    await admin_state.set_password_hash(conn, self._hash, now=now)
        else:
            # A new ADMIN_PASSWORD (or the first one): sessions made before it end now.
            self._hash = passwords.hash_password(self._password)
            async with database.transaction() as conn:
                await admin_state.end_sessions(conn, now=now, password_hash=self._hash)
            if stored is not None:
                log.info("admin.password.changed")
        self._signer = SessionSigner(state.session_secret)

    async def password_matches(self, presented: str) -> bool:
        if self._hash is None:
            raise AdminNotReady("the admin page is not started")
        return await passwords.check(self._hash, presented)

    async def session_of(self, cookie: str | None, *, now: float) -> Session | None:
        """The signed-in session a cookie carries, if it is genuine, young enough and of the
        current generation."""
        session = self.signer.loads(cookie, now=now)
        if session is None:
            return None
        async with self.database.read() as conn:
            current = await admin_state.generation(conn)
        return session if session.generation == current else None

    async def new_session(self, *, now: float) -> Session:
        async with self.database.read() as conn:
            current = await admin_state.generation(conn)
        assert current is not None
        return Session.new(now, current)

    async def end_all_sessions(self) -> None:
        """Log-out: every session, on every instance, ends now."""
        async with self.database.transaction() as conn:
            await admin_state.end_sessions(conn, now=datetime.now(UTC))
