"""Planning the contact searches of one batch of leads — pure.

A batch (up to 50 leads, one ``complex`` or unsorted request) is planned before anything is
sent:

* **Groups**: leads that share a key (same normalised phone or email, under the matching
  mode) are one person, transitively — lead 1 and 2 share a phone, 2 and 3 an email → one
  group of three. A group gets ONE contact: an existing one when matching finds it, otherwise
  the group's first lead creates it and the others link it (the worker sends the others only
  after the first's contact id is known, or in the same request by ``{"id": N}`` once known).
* **Searches**: one ``query`` per distinct key of the batch (``search_queries``), leaving out
  keys a recent search already answered and every key of a group the gateway has a link for
  (``ContactMemory``): a contact it created a moment ago is found without asking amoCRM.
* **Decisions**: per group, ``matching.choose`` over the remembered links and search hits of
  all its keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from amogate.amocrm.models import ContactCard
from amogate.contacts.cache import Recollection, cards_of
from amogate.contacts.matching import (
    ContactDedup,
    ContactKey,
    Match,
    Person,
    choose,
    merge_persons,
    search_queries,
)


@dataclass(frozen=True)
class Group:
    """Leads of one person: ``members`` are batch positions in batch order (the first one
    creates the contact when none exists); ``person`` is every phone/email they gave."""

    members: tuple[int, ...]
    person: Person
    keys: tuple[ContactKey, ...]

    @property
    def creator(self) -> int:
        return self.members[0]


@dataclass(frozen=True)
class BatchPlan:
    groups: tuple[Group, ...]
    _by_member: dict[int, int] = field(default_factory=dict, repr=False, compare=False)

    def group_of(self, position: int) -> Group:
        return self.groups[self._by_member[position]]

    @property
    def keys(self) -> tuple[ContactKey, ...]:
        """Every key of the batch, each once, in the order the leads gave them."""
        return tuple(dict.fromkeys(k for g in self.groups for k in g.keys))

    def searches(self, known: Recollection | None = None) -> dict[str, tuple[ContactKey, ...]]:
        """The searches still to make: query → the keys it answers."""
        known = known or Recollection()
        wanted = [
            key
            for group in self.groups
            if not any(k in known.links for k in group.keys)
            for key in group.keys
            if key not in known.searched
        ]
        return search_queries(dict.fromkeys(wanted))

    def decide(self, group: Group, known: Recollection, region: str) -> Match | None:
        """The contact ``group`` is linked to (None: its creator makes a new one)."""
        return choose(group.keys, cards_of(known, group.keys), region, known.links)


def plan_batch(persons: Sequence[Person], dedup: ContactDedup, region: str) -> BatchPlan:
    """Group the batch's leads (``persons[i]`` is lead ``i``'s person) by shared keys."""
    parent = list(range(len(persons)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_with: dict[ContactKey, int] = {}
    for position, person in enumerate(persons):
        for key in person.keys_for(dedup):
            seen = first_with.setdefault(key, position)
            a, b = root(seen), root(position)
            if a != b:
                parent[max(a, b)] = min(a, b)  # the earliest lead stays the root
    members: dict[int, list[int]] = {}
    for position in range(len(persons)):
        members.setdefault(root(position), []).append(position)
    groups: list[Group] = []
    by_member: dict[int, int] = {}
    for positions in members.values():
        person = merge_persons((persons[p] for p in positions), region)
        for p in positions:
            by_member[p] = len(groups)
        groups.append(Group(tuple(positions), person, person.keys_for(dedup)))
    return BatchPlan(tuple(groups), by_member)


def with_searches(
    known: Recollection, results: Mapping[ContactKey, tuple[ContactCard, ...]]
) -> Recollection:
    """``known`` plus fresh search results (to decide with after searching)."""
    return Recollection({**known.searched, **results}, dict(known.links))
