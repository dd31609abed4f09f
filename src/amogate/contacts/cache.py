"""What the gateway remembers about contacts, per account, between searches.

Two kinds of knowledge, with different lifetimes:

* **Search results** (``remember_search``): which contacts hold a key, as a search showed them
  a moment ago (an empty result is worth remembering too). Short-lived (``search_ttl``, a
  minute by default): a burst of leads from one person costs one search, and a contact
  changed in amoCRM is seen again soon.
* **Links** (``remember_link``): "contact N holds key K because this gateway linked or created
  it". amoCRM hides the contact of an unsorted item from search until a manager accepts the
  item (amocrm-api.md §4.8), which may take days, so this lives long (``link_ttl``, a week by
  default). It also covers a value the gateway just added to a matched contact, which a
  cached search result does not show yet. A link that turns out wrong (amoCRM refuses the
  contact id: the contact was deleted, merged, or its unsorted item declined) is dropped with
  ``forget_contact``.

``ContactMemory`` is the interface the worker uses; ``InMemoryContactMemory`` keeps it in one
process, bounded in size (the oldest entries go first). A database-backed implementation of
the same Protocol keeps links across restarts and workers.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from amogate.amocrm.models import ContactCard
from amogate.contacts.matching import ContactKey, Remembered

SEARCH_TTL = 60.0
LINK_TTL = 7 * 24 * 3600.0
MAX_SEARCHES = 10_000
MAX_LINKS = 100_000
K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class Recollection:
    """What the memory knows about some keys of one account.

    ``searched[key]``: the contacts a recent search showed holding ``key`` (possibly none);
    a key absent from it needs a search. ``links[key]``: the contact the gateway linked or
    created for it.
    """

    searched: dict[ContactKey, tuple[ContactCard, ...]] = field(default_factory=dict)
    links: dict[ContactKey, Remembered] = field(default_factory=dict)


class ContactMemory(Protocol):
    async def recall(self, account: str, keys: Collection[ContactKey]) -> Recollection:
        """Everything still fresh about ``keys`` (one round trip for a whole batch)."""
        ...

    async def remember_search(
        self, account: str, results: dict[ContactKey, tuple[ContactCard, ...]]
    ) -> None:
        """Search results by key: the contacts that really hold each key (maybe none)."""
        ...

    async def remember_link(
        self, account: str, keys: Collection[ContactKey], contact_id: int
    ) -> None:
        """Contact ``contact_id`` now holds ``keys``: this gateway linked or created it."""
        ...

    async def forget_contact(self, account: str, contact_id: int) -> None:
        """Drop every link to, and every search result holding, ``contact_id``."""
        ...


@dataclass(frozen=True, slots=True)
class _Stored:
    cards: tuple[ContactCard, ...]
    at: float


class InMemoryContactMemory:
    """``ContactMemory`` in this process's memory.

    ``clock`` gives unix seconds (``Remembered.at`` is compared across processes by a shared
    implementation, so this one uses the same kind of time).
    """

    def __init__(
        self,
        *,
        search_ttl: float = SEARCH_TTL,
        link_ttl: float = LINK_TTL,
        max_searches: int = MAX_SEARCHES,
        max_links: int = MAX_LINKS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if min(max_searches, max_links) < 1 or min(search_ttl, link_ttl) <= 0:
            raise ValueError("sizes and lifetimes must be positive")
        self.search_ttl = search_ttl
        self.link_ttl = link_ttl
        self.max_searches = max_searches
        self.max_links = max_links
        self._clock = clock
        self._searches: OrderedDict[tuple[str, ContactKey], _Stored] = OrderedDict()
        self._links: OrderedDict[tuple[str, ContactKey], Remembered] = OrderedDict()

    def __len__(self) -> int:
        return len(self._searches) + len(self._links)

    async def recall(self, account: str, keys: Collection[ContactKey]) -> Recollection:
        now = self._clock()
        found = Recollection()
        for key in keys:
            stored = self._searches.get((account, key))
            if stored is not None:
                if now - stored.at < self.search_ttl:
                    found.searched[key] = stored.cards
                else:
                    del self._searches[(account, key)]
            link = self._links.get((account, key))
            if link is not None:
                if now - link.at < self.link_ttl:
                    found.links[key] = link
                else:
                    del self._links[(account, key)]
        return found

    async def remember_search(
        self, account: str, results: dict[ContactKey, tuple[ContactCard, ...]]
    ) -> None:
        now = self._clock()
        for key, cards in results.items():
            _put(self._searches, (account, key), _Stored(tuple(cards), now), self.max_searches)

    async def remember_link(
        self, account: str, keys: Collection[ContactKey], contact_id: int
    ) -> None:
        link = Remembered(int(contact_id), self._clock())
        for key in keys:
            _put(self._links, (account, key), link, self.max_links)

    async def forget_contact(self, account: str, contact_id: int) -> None:
        for (owner, key), link in list(self._links.items()):
            if owner == account and link.contact_id == contact_id:
                del self._links[(owner, key)]
        for (owner, key), stored in list(self._searches.items()):
            if owner == account and any(c.id == contact_id for c in stored.cards):
                del self._searches[(owner, key)]


def _put(entries: OrderedDict[K, V], key: K, value: V, limit: int) -> None:
    entries[key] = value
    entries.move_to_end(key)
    while len(entries) > limit:
        entries.popitem(last=False)


def cards_of(recollection: Recollection, keys: Sequence[ContactKey]) -> list[ContactCard]:
    """Every remembered search hit for ``keys``, for ``matching.choose``."""
    return [card for key in keys for card in recollection.searched.get(key, ())]
