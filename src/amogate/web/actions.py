"""What the admin page changes: creating and revoking API keys (deliveries are sent again
through `amogate.deliveries.service`).

Each action is one write transaction through the storage modules' own functions."""

from __future__ import annotations

from dataclasses import dataclass

from amogate.access import keys
from amogate.storage import api_keys
from amogate.storage.db import Database


@dataclass(frozen=True)
class KeyProblem:
    """A message id of the catalogue and its values."""

    message_id: str
    values: dict[str, str]


def parse_key_request(
    name: str, scopes: list[str], origins_text: str, rate_text: str
) -> keys.KeyRequest | KeyProblem:
    """The admin page's key form, checked by the same rules as the CLI's (`access.keys`)."""
    if len(set(scopes)) != len(scopes):
        return KeyProblem("keys.error_scopes", {})
    rate: int | None = None
    if rate_text.strip():
        try:
            rate = int(rate_text.strip())
        except ValueError:
            return KeyProblem("keys.error_rate", {})
    try:
        return keys.key_request(name, scopes, origins_text.replace(",", "\n").splitlines(), rate)
    except keys.KeyProblem as problem:
        return KeyProblem(problem.message_id, problem.values)


async def create_key(database: Database, wanted: keys.KeyRequest) -> str | None:
    """The new key (to show once), or None when the name is taken."""
    try:
        return (await keys.create_key(database, wanted)).key
    except keys.KeyProblem:
        return None


async def list_keys(database: Database) -> list[api_keys.ApiKeyRow]:
    return await keys.list_keys(database)


async def revoke_key(database: Database, key_id: str) -> api_keys.ApiKeyRow | None:
    return await keys.revoke_key(database, key_id)
