"""What the admin page changes: creating and revoking API keys (deliveries are sent again
through `amogate.deliveries.service`).

Each action is one write transaction through the storage modules' own functions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from amogate.api.auth import SCOPES, key_digest
from amogate.storage import api_keys
from amogate.storage.db import Database

MAX_NAME = 128
MAX_RATE = 100_000


@dataclass(frozen=True)
class KeyRequest:
    name: str
    scopes: list[str]
    origins: list[str]
    rate_per_minute: int | None


@dataclass(frozen=True)
class KeyProblem:
    """A message id of the catalogue and its values."""

    message_id: str
    values: dict[str, str]


def parse_key_request(
    name: str, scopes: list[str], origins_text: str, rate_text: str
) -> KeyRequest | KeyProblem:
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        return KeyProblem("keys.error_name", {})
    chosen = [s for s in SCOPES if s in scopes]
    if not chosen or len(chosen) != len(set(scopes)):
        return KeyProblem("keys.error_scopes", {})
    origins: list[str] = []
    for line in origins_text.replace(",", "\n").splitlines():
        origin = line.strip().rstrip("/")
        if not origin:
            continue
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
            return KeyProblem("keys.error_origin", {"origin": origin[:100]})
        origins.append(origin)
    rate: int | None = None
    if rate_text.strip():
        try:
            rate = int(rate_text.strip())
        except ValueError:
            return KeyProblem("keys.error_rate", {})
        if not 1 <= rate <= MAX_RATE:
            return KeyProblem("keys.error_rate", {})
    return KeyRequest(name, chosen, list(dict.fromkeys(origins)), rate)


async def create_key(database: Database, wanted: KeyRequest) -> str | None:
    """The new key (to show once), or None when the name is taken."""
    key = api_keys.generate_key()
    async with database.transaction() as conn:
        if await api_keys.by_name(conn, wanted.name) is not None:
            return None
        await api_keys.create(
            conn,
            key_id=api_keys.new_id(),
            name=wanted.name,
            key_hash=key_digest(key),
            scopes=wanted.scopes,
            origins=wanted.origins,
            rate_per_minute=wanted.rate_per_minute,
            now=datetime.now(UTC),
        )
    return key


async def list_keys(database: Database) -> list[api_keys.ApiKeyRow]:
    async with database.read() as conn:
        rows = await api_keys.list_all(conn)
    # Active keys first, newest first within each group.
    return sorted(rows, key=lambda r: (r.revoked, -r.created_at.timestamp()))


async def revoke_key(database: Database, key_id: str) -> api_keys.ApiKeyRow | None:
    async with database.transaction() as conn:
        return await api_keys.revoke(conn, key_id, datetime.now(UTC))
