"""Privacy and retention: what the worker erases and deletes, in bounded batches.

- A delivered lead's personal data — the stored request (names, phones, emails, comment), the
  names shown in lists, and amoCRM's answers kept with it — is erased `DATA_RETENTION_DAYS`
  after delivery (a spam form post's, never delivered, that long after it came). The delivery
  row stays (ids, status, times, attempt outcomes), so counts and the amoCRM lead id remain.
- The raw bodies of amoCRM's webhook posts are erased 7 days after they arrived (their hash
  stays, so a late repeat is still recognised); the events parsed from them are deleted
  `DATA_RETENTION_DAYS` after they arrived, once no delivery of theirs still waits.
- Expired idempotency keys, expired OAuth states and rate-limit windows older than a day are
  deleted (nothing else ever deletes them, so the tables would grow forever), and so are the
  contact links no longer trusted (older than a week, `contacts.cache.LINK_TTL`; they hold
  digests, never a phone or email).

A round runs every PURGE_INTERVAL_SECONDS in each worker. Each batch is its own short
transaction of at most `BATCH` rows, and a round stops after `MAX_BATCHES` per kind, so a large
backlog (the first run after an upgrade) is worked off over several rounds without holding the
database's write lock for long. Several workers purging at once is harmless: every step is
idempotent.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from amogate.connection.tokens import utcnow
from amogate.contacts.cache import LINK_TTL
from amogate.storage import accounts, contact_links, idempotency, rate_counters, relay
from amogate.storage import deliveries as store
from amogate.storage import forms as form_store
from amogate.storage.db import Database

log = structlog.get_logger("amogate.retention")

BATCH = 500
MAX_BATCHES = 20
COUNTER_KEEP = timedelta(days=1)
WEBHOOK_BODY_KEEP = timedelta(days=7)


@dataclass(frozen=True)
class PurgeReport:
    erased: int = 0
    idempotency_keys: int = 0
    oauth_states: int = 0
    rate_windows: int = 0
    webhook_bodies: int = 0
    webhook_events: int = 0
    contact_links: int = 0

    @property
    def total(self) -> int:
        return (
            self.erased
            + self.idempotency_keys
            + self.oauth_states
            + self.rate_windows
            + self.webhook_bodies
            + self.webhook_events
            + self.contact_links
        )


@dataclass
class RetentionPurge:
    database: Database
    retention: timedelta
    interval_s: float
    clock: Callable[[], datetime] = utcnow
    monotonic: Callable[[], float] = time.monotonic
    _next_at: float = field(default=0.0, init=False)

    def due(self) -> bool:
        return self.monotonic() >= self._next_at

    async def run_once(self) -> PurgeReport:
        """One round (bounded); the next one is due `interval_s` later."""
        self._next_at = self.monotonic() + self.interval_s
        now = self.clock()
        cutoff = now - self.retention
        report = PurgeReport(
            erased=await self._batches(
                lambda conn: store.erase_personal_data(
                    conn, delivered_before=cutoff, now=now, limit=BATCH
                )
            )
            + await self._batches(  # spam form posts: never delivered, erased after as long
                lambda conn: form_store.erase_spam(
                    conn, received_before=cutoff, now=now, limit=BATCH
                )
            ),
            idempotency_keys=await self._batches(
                lambda conn: idempotency.purge_expired(conn, now=now, limit=BATCH)
            ),
            oauth_states=await self._batches(
                lambda conn: accounts.purge_expired_states(conn, now), once=True
            ),
            rate_windows=await self._batches(
                lambda conn: rate_counters.purge_before(
                    conn, int((now - COUNTER_KEEP).timestamp())
                ),
                once=True,
            ),
            webhook_bodies=await self._batches(
                lambda conn: relay.erase_raw_bodies(
                    conn, received_before=now - WEBHOOK_BODY_KEEP, now=now, limit=BATCH
                )
            ),
            webhook_events=await self._batches(
                lambda conn: relay.delete_old_events(conn, received_before=cutoff, limit=BATCH)
            ),
            contact_links=await self._batches(
                lambda conn: contact_links.purge(conn, before=now.timestamp() - LINK_TTL),
                once=True,
            ),
        )
        if report.erased or report.webhook_bodies or report.webhook_events:
            await self.database.drop_old_page_copies()
        if report.total:
            log.info(
                "retention.purged",
                erased=report.erased,
                idempotency_keys=report.idempotency_keys,
                oauth_states=report.oauth_states,
                rate_windows=report.rate_windows,
                webhook_bodies=report.webhook_bodies,
                webhook_events=report.webhook_events,
                contact_links=report.contact_links,
            )
        return report

    async def _batches(
        self, step: Callable[[AsyncConnection], Awaitable[int]], *, once: bool = False
    ) -> int:
        """Run `step` in its own transaction until it does less than a full batch (or once,
        for steps that are bounded by nature: a few expired states, old windows)."""
        total = 0
        for _ in range(1 if once else MAX_BATCHES):
            async with self.database.transaction() as conn:
                done = await step(conn)
            total += done
            if done < BATCH:
                break
        return total
