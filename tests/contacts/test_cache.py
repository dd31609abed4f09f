"""The per-account contact memory: short-lived search results, long-lived links, bounded."""

from __future__ import annotations

import pytest

from amogate.amocrm.models import ChannelValue, ContactCard
from amogate.contacts.cache import ContactMemory, InMemoryContactMemory, cards_of
from amogate.contacts.matching import ContactKey, Remembered

PHONE = ContactKey("phone", "+998901234567")
EMAIL = ContactKey("email", "a@b.uz")
CARD = ContactCard(5, "A", 10, (ChannelValue("+998901234567"),), ())


class Clock:
    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def memory(clock: Clock) -> InMemoryContactMemory:
    return InMemoryContactMemory(search_ttl=60, link_ttl=3600, clock=clock)


def test_the_in_memory_memory_is_a_contact_memory(memory: InMemoryContactMemory) -> None:
    typed: ContactMemory = memory
    assert typed is memory


async def test_nothing_is_known_at_first(memory: InMemoryContactMemory) -> None:
    known = await memory.recall("default", [PHONE, EMAIL])

    assert (known.searched, known.links) == ({}, {})


async def test_a_search_result_is_remembered_until_its_lifetime_ends(
    memory: InMemoryContactMemory, clock: Clock
) -> None:
    await memory.remember_search("default", {PHONE: (CARD,), EMAIL: ()})
    clock.now += 59

    fresh = await memory.recall("default", [PHONE, EMAIL])
    clock.now += 1
    stale = await memory.recall("default", [PHONE, EMAIL])

    assert fresh.searched == {PHONE: (CARD,), EMAIL: ()}
    assert cards_of(fresh, [PHONE, EMAIL]) == [CARD]
    assert stale.searched == {}
    assert len(memory) == 0  # expired entries are dropped when met


async def test_a_link_outlives_search_results(memory: InMemoryContactMemory, clock: Clock) -> None:
    await memory.remember_link("default", [PHONE, EMAIL], 42)
    clock.now += 3599

    known = await memory.recall("default", [PHONE, EMAIL])
    clock.now += 1
    gone = await memory.recall("default", [PHONE])

    at = 1_750_000_000.0
    assert known.links == {PHONE: Remembered(42, at), EMAIL: Remembered(42, at)}
    assert gone.links == {}


async def test_accounts_do_not_see_each_others_contacts(memory: InMemoryContactMemory) -> None:
    await memory.remember_link("default", [PHONE], 42)
    await memory.remember_search("default", {EMAIL: (CARD,)})

    other = await memory.recall("shop-2", [PHONE, EMAIL])

    assert (other.searched, other.links) == ({}, {})


async def test_a_new_link_for_a_key_replaces_the_old_one(
    memory: InMemoryContactMemory, clock: Clock
) -> None:
    await memory.remember_link("default", [PHONE], 42)
    clock.now += 10
    await memory.remember_link("default", [PHONE], 43)

    known = await memory.recall("default", [PHONE])

    assert known.links[PHONE] == Remembered(43, clock.now)


async def test_forgetting_a_contact_drops_its_links_and_the_searches_showing_it(
    memory: InMemoryContactMemory,
) -> None:
    other = ContactKey("phone", "+998907777777")
    await memory.remember_link("default", [PHONE, EMAIL], 5)
    await memory.remember_link("default", [other], 6)
    await memory.remember_link("shop-2", [PHONE], 5)
    await memory.remember_search("default", {PHONE: (CARD,), other: ()})

    await memory.forget_contact("default", 5)

    known = await memory.recall("default", [PHONE, EMAIL, other])
    assert known.links == {other: Remembered(6, known.links[other].at)}
    assert known.searched == {other: ()}
    assert (await memory.recall("shop-2", [PHONE])).links[PHONE].contact_id == 5


async def test_the_oldest_entries_go_first_when_the_memory_is_full(clock: Clock) -> None:
    memory = InMemoryContactMemory(max_searches=3, max_links=2, clock=clock)
    keys = [ContactKey("phone", f"+99890{n}000000") for n in range(1, 6)]
    for key in keys:
        await memory.remember_search("default", {key: ()})
        await memory.remember_link("default", [key], 1)

    known = await memory.recall("default", keys)

    assert sorted(known.searched) == sorted(keys[2:])
    assert sorted(known.links) == sorted(keys[3:])
    assert len(memory) == 5


@pytest.mark.parametrize(
    "options",
    [{"max_searches": 0}, {"max_links": 0}, {"search_ttl": 0}, {"link_ttl": -1}],
)
def test_sizes_and_lifetimes_must_be_positive(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="positive"):
        InMemoryContactMemory(**options)  # type: ignore[arg-type]
