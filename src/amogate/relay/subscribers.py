"""Subscribers: who gets which events of an account, shared by the CLI and the admin page."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from amogate.relay import events, signing
from amogate.storage import accounts
from amogate.storage import relay as store
from amogate.storage.db import Database

ACCOUNT_NAME = re.compile(r"[a-z0-9-]{1,40}")
MAX_URL_LENGTH = 2000


class SubscriberError(ValueError):
    """Input the operator must correct (the message says how)."""


@dataclass(frozen=True)
class Added:
    subscriber: store.Subscriber

    @property
    def secret(self) -> str:
        return self.subscriber.secret


def check_account(account_key: str) -> str:
    if not ACCOUNT_NAME.fullmatch(account_key):
        raise SubscriberError("an account name is 1-40 of a-z, 0-9 and '-'")
    return account_key


def check_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SubscriberError("the URL must start with http:// or https:// and name a host")
    if len(url) > MAX_URL_LENGTH:
        raise SubscriberError(f"the URL is longer than {MAX_URL_LENGTH} characters")
    return url.strip()


async def add(database: Database, url: str, *, account_key: str, event_list: str) -> Added:
    """A new subscriber with a new signing key; `SubscriberError` for bad input."""
    check_account(account_key)
    checked_url = check_url(url)
    try:
        codes = events.parse_event_list(event_list)
    except ValueError as exc:
        raise SubscriberError(str(exc)) from None
    now = datetime.now(UTC)
    async with database.transaction() as conn:
        if account_key != accounts.DEFAULT_ACCOUNT:
            row = await accounts.get(conn, account_key)
            if row is None or row.added_at is None:
                raise SubscriberError(f"Account not found: {account_key}")
        await store.ensure_account(conn, account_key, now)
        subscriber = await store.add_subscriber(
            conn,
            account_key=account_key,
            url=checked_url,
            events=codes,
            secret=signing.new_secret(),
            now=now,
        )
    return Added(subscriber)


async def remove(database: Database, subscriber_id: str) -> bool:
    async with database.transaction() as conn:
        return await store.remove_subscriber(conn, subscriber_id)


async def listing(database: Database, account_key: str | None = None) -> list[store.Subscriber]:
    async with database.read() as conn:
        return await store.list_subscribers(conn, account_key)
