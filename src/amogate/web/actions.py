"""What the admin page changes: retrying deliveries, creating and revoking API keys.

Each action is one write transaction through the storage modules' own functions."""

from __future__ import annotations

from dataclasses import dataclass

from amogate.access import keys
from amogate.settings import Settings
from amogate.storage import api_keys
from amogate.storage.db import Database
from amogate.worker import requeue
from amogate.worker.worker import policy_from


async def retry_delivery(database: Database, settings: Settings, delivery_id: str) -> bool:
    """Send a failed or waiting delivery again now, with a fresh retry period; False when it is
    delivered or being sent."""
    return await requeue.retry_delivery(database, delivery_id, policy_from(settings).max_age)


async def retry_all_failed(database: Database, settings: Settings) -> int:
    return await requeue.retry_all_failed(database, policy_from(settings).max_age)


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
