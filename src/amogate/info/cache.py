"""`InfoCache`: amoCRM's account, pipelines and custom-field lists, cached per account.

Why: the original gateway called amoCRM on every read, so a dashboard polling the info endpoints
ran into 429s, and the lead intake needs the field lists on every request to resolve field
names and enum labels.

How it behaves:
- Each kind (`account`, `pipelines`, `lead_fields`, `contact_fields`, `users`) is fetched at
  most once per `ttl` seconds. Concurrent misses share ONE upstream fetch (one task per kind,
  awaited through `asyncio.shield`, so a caller that gives up does not cancel the fetch for
  the others);
  `force_refresh=True` starts a fetch unless one is already running, and joins it — but at
  most once per `refresh_min_interval` seconds (10 by default) per kind: a copy younger than
  that is served as it is, so a caller with a read key cannot spend the account's 7 requests/s
  (which deliveries need) by asking for `?refresh=true` in a loop.
- A failed fetch is classified once (`amogate.failures.classify`). When amoCRM cannot answer
  now (5xx, timeout, connection, 429, a 403 block: `Failure.serve_stale`) and a copy exists
  (however old), the copy is returned marked `stale`. Without a copy, or for other failures,
  callers get the gateway's public error for it (`amogate.errors.public_error`:
  `ServiceUnavailable` / `UpstreamTimeout` / `UpstreamError` with a fixed message and
  `Retry-After` when known, never exception text), the classified failure kept behind it.
- The cache lives in process memory: every gateway instance keeps its own copy and fetches on
  its own (bounded by the shared outbound budget). One `InfoCache` serves one amoCRM account
  (`account_key`, "default" for now).

Values are shared between callers: treat what `entry()` returns as read-only. The typed
accessors (`lead_fields()` ...) return deep copies, so their callers may change them freely.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

import structlog

from amogate.amocrm.errors import AmoError
from amogate.errors import UNAVAILABLE, NotFound, ServiceUnavailable, public_error
from amogate.failures import classify

log = structlog.get_logger("amogate.info")

Kind = Literal["account", "pipelines", "lead_fields", "contact_fields", "users"]
KINDS: tuple[Kind, ...] = ("account", "pipelines", "lead_fields", "contact_fields", "users")

Clock = Callable[[], float]

# `?refresh=true` is honoured at most this often per kind (seconds).
DEFAULT_REFRESH_MIN_INTERVAL = 10.0

# A pipeline id missing from a copy at least this old makes one upstream look-up (a pipeline
# created since); younger copies answer 404 at once, so unknown ids cannot drive up calls.
PIPELINE_MISS_REFRESH_SECONDS = 10.0


class InfoSource(Protocol):
    """Where the cache gets its data (amoCRM in production, a fake in unit tests)."""

    async def fetch(self, kind: Kind) -> Any:
        """The current value of `kind`; raises `AmoError` when amoCRM cannot give it."""
        ...


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One cached value as handed to a caller.

    `fetched_at` is the clock reading (unix seconds by default) when amoCRM answered;
    `age_seconds` is how old it was when handed out; `stale` is True when a refresh failed and
    this older copy was served instead; `cached` is False when this call waited for a fetch.
    `etag` is a strong validator: a hash of the value's canonical JSON.
    """

    kind: str
    value: Any
    fetched_at: float
    etag: str
    stale: bool = False
    cached: bool = True
    age_seconds: float = 0.0


def etag_of(value: Any) -> str:
    """A strong ETag for a JSON-able value: equal data gives an equal tag on every instance."""
    canonical = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return '"' + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:40] + '"'


class InfoCache:
    def __init__(
        self,
        source: InfoSource,
        *,
        ttl: float = 300.0,
        clock: Clock = time.time,
        account_key: str = "default",
        refresh_min_interval: float = DEFAULT_REFRESH_MIN_INTERVAL,
    ) -> None:
        self.source = source
        self.ttl = ttl
        self.refresh_min_interval = refresh_min_interval
        self.clock = clock
        self.account_key = account_key
        self._entries: dict[str, CacheEntry] = {}
        self._inflight: dict[str, asyncio.Task[CacheEntry]] = {}
        self._forced_at: dict[str, float] = {}  # when a forced refresh last called amoCRM
        self.fetches: dict[str, int] = dict.fromkeys(KINDS, 0)  # upstream fetches started

    def __repr__(self) -> str:
        return f"InfoCache(account={self.account_key!r}, ttl={self.ttl})"

    # --- typed accessors (used by the lead intake and others) --------------------------------

    async def account(self, force_refresh: bool = False) -> dict[str, Any]:
        """The account object (`id`, `name`, `subdomain`, `currency`, `timezone`, ...)."""
        value = (await self.entry("account", force_refresh=force_refresh)).value
        return dict(copy.deepcopy(value))

    async def pipelines(self, force_refresh: bool = False) -> list[dict[str, Any]]:
        """Every pipeline, each with `_embedded.statuses`."""
        value = (await self.entry("pipelines", force_refresh=force_refresh)).value
        return list(copy.deepcopy(value))

    async def pipeline(self, pipeline_id: int, force_refresh: bool = False) -> dict[str, Any]:
        """One pipeline from the cached list; `NotFound` when the account has no such id."""
        value = (await self.pipeline_entry(pipeline_id, force_refresh=force_refresh)).value
        return dict(copy.deepcopy(value))

    async def lead_fields(self, force_refresh: bool = False) -> list[dict[str, Any]]:
        """Every lead custom field (all pages)."""
        value = (await self.entry("lead_fields", force_refresh=force_refresh)).value
        return list(copy.deepcopy(value))

    async def contact_fields(self, force_refresh: bool = False) -> list[dict[str, Any]]:
        """Every contact custom field (all pages)."""
        value = (await self.entry("contact_fields", force_refresh=force_refresh)).value
        return list(copy.deepcopy(value))

    # --- entries (used by the API layer) -----------------------------------------------------

    async def entry(self, kind: Kind, force_refresh: bool = False) -> CacheEntry:
        """The value of `kind`, from memory while younger than `ttl`, else fetched.

        Raises a `GatewayError` (see `amogate.errors.public_error`) when amoCRM fails and no
        copy can be served.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown info kind: {kind!r}")
        now = self.clock()
        stored = self._entries.get(kind)
        if (
            stored is not None
            and now - stored.fetched_at < self.ttl
            and (not force_refresh or not self._may_force(kind, stored, now))
        ):
            return self._view(stored, now, cached=True)
        task = self._inflight.get(kind)
        if task is None:
            task = asyncio.create_task(self._fetch(kind), name=f"amogate-info-{kind}")
            self._inflight[kind] = task
            task.add_done_callback(self._fetch_done)
        try:
            fresh = await asyncio.shield(task)
        except AmoError as exc:
            failure = classify(exc)
            stored = self._entries.get(kind)
            if stored is not None and failure.serve_stale:
                log.warning(
                    "info.serving_stale",
                    kind=kind,
                    error=type(exc).__name__,
                    status=exc.status,
                    age_s=round(self.clock() - stored.fetched_at, 1),
                )
                return self._view(stored, self.clock(), cached=True, stale=True)
            raise public_error(failure) from None
        return self._view(fresh, self.clock(), cached=False)

    async def pipeline_entry(self, pipeline_id: int, force_refresh: bool = False) -> CacheEntry:
        """One pipeline, with the freshness of the pipelines list and its own ETag.

        An id not in a cached copy (older than PIPELINE_MISS_REFRESH_SECONDS) may belong to a
        pipeline created since: the list is fetched again once (concurrent misses share that
        fetch) before answering 404; when amoCRM cannot be asked, the answer is 503."""
        listed = await self.entry("pipelines", force_refresh=force_refresh)
        found = _pipeline_in(listed, pipeline_id)
        if found is None and listed.cached and listed.age_seconds >= PIPELINE_MISS_REFRESH_SECONDS:
            log.info("info.pipeline.lookup", pipeline_id=pipeline_id)
            listed = await self.entry("pipelines", force_refresh=True)
            found = _pipeline_in(listed, pipeline_id)
            if found is None and listed.stale:
                raise ServiceUnavailable(UNAVAILABLE)
        if found is None:
            raise NotFound(f"Pipeline not found: {pipeline_id}")
        return found

    def peek(self, kind: Kind) -> CacheEntry | None:
        """The stored copy of `kind` without fetching (None when there is none)."""
        stored = self._entries.get(kind)
        if stored is None:
            return None
        now = self.clock()
        return self._view(stored, now, cached=True, stale=now - stored.fetched_at >= self.ttl)

    def invalidate(self, kind: Kind | None = None) -> None:
        """Forget one kind (or everything), e.g. after the account was reconnected."""
        if kind is None:
            self._entries.clear()
        else:
            self._entries.pop(kind, None)

    # --- internals ---------------------------------------------------------------------------

    def _may_force(self, kind: Kind, stored: CacheEntry, now: float) -> bool:
        """Whether a forced refresh of `kind` may call amoCRM now (and, if so, counts it)."""
        last = max(stored.fetched_at, self._forced_at.get(kind, -math.inf))
        if now - last < self.refresh_min_interval:
            return False
        self._forced_at[kind] = now
        return True

    async def _fetch(self, kind: Kind) -> CacheEntry:
        self.fetches[kind] += 1
        value = await self.source.fetch(kind)
        stored = CacheEntry(kind=kind, value=value, fetched_at=self.clock(), etag=etag_of(value))
        self._entries[kind] = stored
        log.debug("info.fetched", kind=kind, account=self.account_key)
        return stored

    def _fetch_done(self, task: asyncio.Task[CacheEntry]) -> None:
        for kind, running in list(self._inflight.items()):
            if running is task:
                del self._inflight[kind]
        # Mark the outcome as seen: every waiter may have gone away before it arrived.
        if not task.cancelled():
            task.exception()

    @staticmethod
    def _view(stored: CacheEntry, now: float, *, cached: bool, stale: bool = False) -> CacheEntry:
        age = max(0.0, now - stored.fetched_at)
        return replace(stored, cached=cached, stale=stale, age_seconds=age)


def _pipeline_in(listed: CacheEntry, pipeline_id: int) -> CacheEntry | None:
    for pipeline in listed.value:
        if isinstance(pipeline, dict) and pipeline.get("id") == pipeline_id:
            return replace(listed, kind="pipeline", value=pipeline, etag=etag_of(pipeline))
    return None
