"""amoCRM's webhook posts coming in: check the URL's secret, parse, store, say how it went.

amoCRM waits 2 s for an answer and disables a webhook that keeps failing, so the answer must
not depend on anything slow: the post is parsed, then stored with its events and their
deliveries in one (group-committed) transaction, and the relay worker is woken. Subscribers
are never called here. A body amoCRM would never send (not its format, too big) is refused
without storing anything; an identical repeat of a stored post is answered 200 and stored
nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from amogate.amocrm.webhook_format import MAX_BODY_BYTES, WebhookFormatError, parse_webhook
from amogate.relay import events
from amogate.relay.subscribers import ACCOUNT_NAME
from amogate.storage import relay as store
from amogate.storage.db import Database

log = structlog.get_logger("amogate.relay")

# Compared against when the account is unknown, so both cases take the same time.
_NO_SECRET = "-" * 32


class Outcome(Enum):
    NOT_FOUND = "not_found"  # unknown account or wrong secret: the same answer for both
    TOO_LARGE = "too_large"
    INVALID = "invalid"
    STORED = "stored"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class Received:
    outcome: Outcome
    events: int = 0
    deliveries: int = 0
    problem: str = ""


def secret_matches(given: str, stored: str | None) -> bool:
    """Constant-time comparison of the URL's secret with the account's."""
    expected = (stored or _NO_SECRET).encode()
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected) and stored is not None


async def receive(
    database: Database,
    account_key: str,
    secret: str,
    body: bytes,
    *,
    keep_trying: timedelta = store.DEFAULT_KEEP_TRYING,
) -> Received:
    stored_secret = None
    if ACCOUNT_NAME.fullmatch(account_key):
        async with database.read() as conn:
            account = await store.get_account(conn, account_key)
        stored_secret = account.inbound_secret if account else None
    if not secret_matches(secret, stored_secret):
        return Received(Outcome.NOT_FOUND)
    if len(body) > MAX_BODY_BYTES:
        return Received(Outcome.TOO_LARGE, problem=f"larger than {MAX_BODY_BYTES} bytes")
    try:
        post = parse_webhook(body)
    except WebhookFormatError as exc:
        log.warning("webhook.inbound.invalid", account=account_key, reason=str(exc))
        return Received(Outcome.INVALID, problem=str(exc))
    now = datetime.now(UTC)
    new_events = events.events_of(post, now)
    body_hash = hashlib.sha256(body).hexdigest()
    text = body.decode("utf-8")

    async def unit(conn: AsyncConnection) -> store.StoredPost:
        return await store.store_post(
            conn,
            account_key=account_key,
            body_hash=body_hash,
            body=text,
            events=new_events,
            now=now,
            keep_trying=keep_trying,
        )

    stored = await database.grouped(unit)
    if stored.duplicate:
        log.info("webhook.inbound.duplicate", account=account_key)
        return Received(Outcome.DUPLICATE)
    log.info(
        "webhook.inbound.stored",
        account=account_key,
        events=len(stored.event_ids),
        deliveries=stored.deliveries,
        codes=sorted({e.code for e in new_events}),
    )
    return Received(Outcome.STORED, len(stored.event_ids), stored.deliveries)
