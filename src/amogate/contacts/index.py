"""A local index of one account's contacts, so matching costs no search per lead.

amoCRM's only dependable contact lookup is the ``query`` search (amocrm-api.md §4.10), one
request per phone/email. At 7 requests/s that is ~26 times the cost of delivering a batch of
50 leads from 50 different people (two requests), so instead the worker lists the account's
contacts once (250 per page, by id) and then, before each batch, asks only for contacts changed
since the newest change it has seen (``filter[updated_at][from]``, inclusive; amoCRM's own
clock, so no skew between hosts) — usually one request answered 204. An account with more than
``max_pages`` pages of contacts is not indexed: matching then falls back to ``query`` searches.

Lookup mirrors the search: a phone key's candidates are the contacts with a stored phone whose
last ``SUFFIX`` digits equal the key's (the way a search by the national number finds every
way of writing it), an email's those with that address; ``matching.hits_by_key`` then compares
exactly. What the index cannot see, the gateway's own links cover (``storage.contact_links``):
contacts of unaccepted unsorted items are not listed, and a contact deleted in amoCRM stays in
the index until amoCRM refuses it (``drop``).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from amogate.amocrm.client import AmoClient
from amogate.amocrm.models import ContactCard, contact_card
from amogate.contacts.matching import ContactKey

PAGE = 250
MAX_PAGES = 200  # 50,000 contacts: beyond that the account is searched key by key
SUFFIX = 7
REFRESH_INTERVAL = 2.0  # seconds: a burst of batches shares one refresh
_NOT_DIGIT = re.compile(r"\D")


def phone_suffix(text: str) -> str | None:
    digits = _NOT_DIGIT.sub("", text)
    return digits[-SUFFIX:] if len(digits) >= SUFFIX else None


@dataclass
class ContactIndex:
    """One account's visible contacts by phone suffix and email (in this process)."""

    max_pages: int = MAX_PAGES
    refresh_interval: float = REFRESH_INTERVAL
    clock: Callable[[], float] = time.monotonic
    ready: bool = False
    too_large: bool = False
    requests: int = 0  # amoCRM calls spent on the index (for the benchmark and the tests)
    _cards: dict[int, ContactCard] = field(default_factory=dict)
    _by_suffix: dict[str, set[int]] = field(default_factory=dict)
    _by_email: dict[str, set[int]] = field(default_factory=dict)
    _high_water: int | None = None
    _synced_at: float | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def usable(self) -> bool:
        return self.ready and not self.too_large

    def __len__(self) -> int:
        return len(self._cards)

    async def sync(self, client: AmoClient, *, force: bool = False) -> bool:
        """Build the index, or bring it up to date when the last sync is older than
        ``refresh_interval``. Whether lookups can be answered from it. amoCRM's errors pass."""
        async with self._lock:
            if self.too_large:
                return False
            now = self.clock()
            if (
                not force
                and self._synced_at is not None
                and now - self._synced_at < self.refresh_interval
            ):
                return True
            if not self.ready:
                await self._build(client)
            else:
                await self._refresh(client)
            self._synced_at = now
            return self.usable

    async def _build(self, client: AmoClient) -> None:
        cards: list[ContactCard] = []
        for page in range(1, self.max_pages + 1):
            items, more = await client.list_contacts(page=page, limit=PAGE, order={"id": "asc"})
            self.requests += 1
            cards += [contact_card(item) for item in items]
            if not more:
                break
        else:
            self.too_large = True
            return
        self._clear()
        for card in cards:
            self.put(card)
        self._high_water = max((c.updated_at for c in cards), default=int(time.time()) - 300)
        self.ready = True

    async def _refresh(self, client: AmoClient) -> None:
        since = self._high_water or 0
        for page in range(1, self.max_pages + 1):
            items, more = await client.list_contacts(
                page=page, limit=PAGE, order={"updated_at": "asc"}, updated_at={"from": since}
            )
            self.requests += 1
            for item in items:
                self.put(contact_card(item))
            if not more:
                break

    def _clear(self) -> None:
        self._cards.clear()
        self._by_suffix.clear()
        self._by_email.clear()

    def put(self, card: ContactCard) -> None:
        """Add or replace one contact (as amoCRM lists it now)."""
        self.drop(card.id)
        self._high_water = max(self._high_water or 0, card.updated_at)
        if card.is_deleted:
            return
        self._cards[card.id] = card
        for phone in card.phones:
            suffix = phone_suffix(phone.value)
            if suffix is not None:
                self._by_suffix.setdefault(suffix, set()).add(card.id)
        for email in card.emails:
            self._by_email.setdefault(email.value.strip().lower(), set()).add(card.id)

    def drop(self, contact_id: int) -> None:
        """Forget a contact (amoCRM refused it: deleted or merged)."""
        card = self._cards.pop(contact_id, None)
        if card is None:
            return
        for phone in card.phones:
            suffix = phone_suffix(phone.value)
            if suffix is not None:
                self._by_suffix.get(suffix, set()).discard(contact_id)
        for email in card.emails:
            self._by_email.get(email.value.strip().lower(), set()).discard(contact_id)

    def card(self, contact_id: int) -> ContactCard | None:
        return self._cards.get(contact_id)

    def candidates(self, keys: Iterable[ContactKey]) -> list[ContactCard]:
        """Contacts that may hold one of ``keys`` (compare them exactly before use)."""
        ids: set[int] = set()
        for key in keys:
            if key.kind == "email":
                ids |= self._by_email.get(key.value, set())
            else:
                suffix = phone_suffix(key.value)
                ids |= self._by_suffix.get(suffix, set()) if suffix else set()
        return [self._cards[i] for i in sorted(ids)]
