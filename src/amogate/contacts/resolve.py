"""Which contact each lead of a batch goes to, before the batch is sent (SPEC §9).

``ContactResolver.plan`` takes the batch's leads of one account and answers, per lead, a
``ContactChoice``: link an existing contact (``contact_id``), or create one. In order:

1. the leads are grouped by person (``batch.plan_batch``: shared normalised phone/email);
2. the gateway's own links (``storage.contact_links``: contacts it created or linked for a
   key, including those amoCRM hides in unaccepted unsorted items) are read for every key;
3. the rest are looked up in the account's contact index (``index.ContactIndex``: one cheap
   refresh request per batch), or, for an account too large to index, by amoCRM's ``query``
   search (one per distinct key, results kept ``SEARCH_TTL`` seconds);
4. ``matching.choose`` compares exactly and picks the most recently updated match (several →
   a remark on the lead: it goes to the delivery's warnings and the manager's note);
5. a person nobody has a contact for is *claimed* (``contact_links.claim``): the group's first
   lead creates the contact (wave 1), the group's other leads link it once it exists (wave 2);
   a person another worker is creating right now waits (``deferred``);
6. the lead's new phones/emails are added to a matched contact (read fresh, then one batch
   ``PATCH``), never overwriting what it holds.

Every amoCRM call goes through the worker's client, so it spends the account's budget.
``settle`` records the contacts the first wave created and hands them to the second.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from amogate.amocrm.client import AmoClient
from amogate.amocrm.models import ContactCard, contact_card
from amogate.contacts.batch import Group, plan_batch
from amogate.contacts.cache import LINK_TTL, InMemoryContactMemory, Recollection
from amogate.contacts.index import ContactIndex
from amogate.contacts.matching import (
    SEARCH_LIMIT,
    ContactDedup,
    ContactKey,
    Match,
    Remembered,
    additions,
    contact_update,
    hits_by_key,
    parse_dedup,
    person_of,
    search_queries,
)
from amogate.storage import contact_links
from amogate.storage.db import Database

log = structlog.get_logger("amogate.contacts")

JSON = dict[str, Any]
CLAIM_SECONDS = 120.0  # a claim outlives one send; a dead worker's claim runs out after this
AMBIGUOUS = "several contacts hold this phone/email ({ids}); linked to {chosen}, updated last"


@dataclass
class ContactChoice:
    """Where one lead's contact comes from.

    ``contact_id`` set: link that contact. None: the lead creates a new contact (``creator``
    when others of the batch wait for it). ``follows``: the delivery id whose new contact this
    lead links (filled in by ``settle``). ``matched``: linked to a contact that existed
    before this lead."""

    keys: tuple[ContactKey, ...] = ()
    contact_id: int | None = None
    matched: bool = False
    creator: bool = False
    follows: str | None = None
    remarks: list[JSON] = field(default_factory=list)


@dataclass
class ContactPlan:
    account: str
    choices: dict[str, ContactChoice]
    first: list[str]  # delivery ids to send now
    then: list[str]  # delivery ids to send once their creator's contact exists
    deferred: list[str]  # another worker is creating their contact: try again in a moment
    claimed: dict[str, tuple[str, ...]] = field(default_factory=dict)  # creator → keys


def no_matching(ids: Sequence[str], account: str = "default") -> ContactPlan:
    return ContactPlan(account, {i: ContactChoice() for i in ids}, list(ids), [], [])


@dataclass
class ContactResolver:
    database: Database
    region: str
    dedup: ContactDedup
    owner: str = "amogate"
    link_ttl: float = LINK_TTL
    claim_seconds: float = CLAIM_SECONDS
    index_factory: Callable[[], ContactIndex] = ContactIndex
    clock: Callable[[], float] = time.time
    searches: InMemoryContactMemory = field(default_factory=InMemoryContactMemory)
    indexes: dict[str, ContactIndex] = field(default_factory=dict)
    search_requests: int = 0

    def index(self, account: str) -> ContactIndex:
        found = self.indexes.get(account)
        if found is None:
            found = self.indexes[account] = self.index_factory()
        return found

    async def mode(self, account: str) -> ContactDedup:
        """The account's own matching mode when it has one, else ``CONTACT_DEDUP``."""
        async with self.database.read() as conn:
            text = await contact_links.account_dedup(conn, account)
        if text:
            try:
                return parse_dedup(text)
            except ValueError:
                log.warning("contacts.dedup.unreadable", account=account)
        return self.dedup

    async def plan(
        self, client: AmoClient, account: str, leads: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> ContactPlan:
        """The contact of each lead (``(delivery id, stored payload)``). amoCRM's errors pass:
        the caller reschedules the batch as for any failed call."""
        ids = [delivery_id for delivery_id, _ in leads]
        dedup = await self.mode(account)
        if not dedup.enabled:
            return no_matching(ids, account)
        persons = [person_of(payload.get("contact") or {}) for _, payload in leads]
        batch = plan_batch(persons, dedup, self.region)
        now = self.clock()
        async with self.database.read() as conn:
            rows = await contact_links.rows(conn, account, [str(k) for k in batch.keys])
        links = {
            ContactKey.parse(k): Remembered(r.contact_id, r.updated_at)
            for k, r in rows.items()
            if r.contact_id is not None and now - r.updated_at < self.link_ttl
        }
        unlinked = [g for g in batch.groups if g.keys and not any(k in links for k in g.keys)]
        searched = await self._look_up(client, account, [k for g in unlinked for k in g.keys])
        known = Recollection(searched, links)
        plan = ContactPlan(account, {}, [], [], [])
        updates: list[tuple[Group, Match]] = []
        new: list[Group] = []
        for group in batch.groups:
            match = batch.decide(group, known, self.region) if group.keys else None
            members = [ids[p] for p in group.members]
            if match is None:
                if group.keys:
                    new.append(group)
                else:
                    for delivery_id in members:
                        plan.choices[delivery_id] = ContactChoice()
                        plan.first.append(delivery_id)
                continue
            updates.append((group, match))
            remarks = _ambiguity(match)
            for delivery_id in members:
                plan.choices[delivery_id] = ContactChoice(
                    group.keys, match.contact_id, True, remarks=list(remarks)
                )
                plan.first.append(delivery_id)
        await self._claim(plan, new, ids)
        await self._add_values(client, account, updates)
        return plan

    async def _look_up(
        self, client: AmoClient, account: str, keys: Sequence[ContactKey]
    ) -> dict[ContactKey, tuple[ContactCard, ...]]:
        """The contacts holding each key, exactly compared: from the index, or by search."""
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}
        index = self.index(account)
        if await index.sync(client):
            return hits_by_key(keys, index.candidates(keys), self.region)
        known = await self.searches.recall(account, keys)
        fresh: dict[ContactKey, tuple[ContactCard, ...]] = {}
        missing = [k for k in keys if k not in known.searched]
        for query, served in search_queries(missing).items():
            found = await client.search_contacts(query, limit=SEARCH_LIMIT)
            self.search_requests += 1
            fresh.update(hits_by_key(served, [contact_card(c) for c in found], self.region))
        await self.searches.remember_search(account, fresh)
        return {**known.searched, **fresh}

    async def _claim(self, plan: ContactPlan, groups: Sequence[Group], ids: Sequence[str]) -> None:
        if not groups:
            return
        now = self.clock()
        keys = [str(k) for g in groups for k in g.keys]
        async with self.database.transaction() as conn:
            rows = await contact_links.claim(
                conn,
                plan.account,
                keys,
                owner=self.owner,
                now=now,
                until=now + self.claim_seconds,
                links_from=now - self.link_ttl,
            )
            for group in groups:
                members = [ids[p] for p in group.members]
                mine = [rows[str(k)] for k in group.keys]
                linked = [r for r in mine if r.contact_id is not None]
                if linked:  # another worker created it a moment ago
                    latest = max(linked, key=lambda r: r.updated_at)
                    assert latest.contact_id is not None
                    for delivery_id in members:
                        plan.choices[delivery_id] = ContactChoice(
                            group.keys, latest.contact_id, True
                        )
                        plan.first.append(delivery_id)
                    continue
                if any(r.claimed_by_other(self.owner, now) for r in mine):
                    plan.deferred += members
                    continue
                creator, *followers = members
                plan.choices[creator] = ContactChoice(group.keys, creator=bool(followers))
                plan.claimed[creator] = tuple(str(k) for k in group.keys)
                plan.first.append(creator)
                for delivery_id in followers:
                    plan.choices[delivery_id] = ContactChoice(group.keys, follows=creator)
                    plan.then.append(delivery_id)
            # Claims of deferred groups are not ours; release what we took for them.
            taken = [str(k) for g in groups if ids[g.creator] in plan.deferred for k in g.keys]
            await contact_links.release(conn, plan.account, taken, self.owner)

    async def _add_values(
        self, client: AmoClient, account: str, matched: Sequence[tuple[Group, Match]]
    ) -> None:
        """Add the leads' new phones/emails to their matched contacts, read fresh (amoCRM's
        PATCH replaces a field's whole list). A contact amoCRM does not list (hidden in an
        unaccepted unsorted item) is left as it is. Contacts the index or the search shows
        already holding every value of the lead are not read again."""
        wanted = {m.contact_id: g for g, m in matched if g.person.phones or g.person.emails}
        if not wanted:
            return
        index = self.index(account)
        shown = {m.contact_id: m.card or index.card(m.contact_id) for _, m in matched}
        to_read = [
            contact_id
            for contact_id, group in wanted.items()
            if _may_add(group, shown.get(contact_id), index.usable, self.region)
        ]
        fresh = {}
        if to_read:
            fresh = {c.id: c for c in map(contact_card, await client.get_contacts(to_read))}
        items = []
        for contact_id, group in wanted.items():
            card = fresh.get(contact_id)
            if card is None or card.is_deleted:
                continue
            item = contact_update(card, additions(group.person, card, self.region))
            if item is not None:
                items.append(item)
        if items:
            await client.update_contacts(items)
        now = self.clock()
        async with self.database.transaction() as conn:
            for contact_id, group in wanted.items():
                await contact_links.link(
                    conn, account, [str(k) for k in group.keys], contact_id, now=now
                )
        log.info("contacts.matched", account=account, contacts=len(wanted), updated=len(items))

    async def settle(self, plan: ContactPlan, created: Mapping[str, int | None]) -> None:
        """The first wave went out: ``created`` maps its delivery ids to the contact amoCRM
        made or linked (None: not created). Creators' contacts are remembered for their keys
        and handed to their followers; a creator that failed releases its claim, and its
        followers wait for the next pass (they will claim again)."""
        now = self.clock()
        released: list[str] = []
        links: dict[str, int] = {}
        for creator, keys in plan.claimed.items():
            contact_id = created.get(creator)
            if contact_id is None:
                released += keys
            else:
                links.update(dict.fromkeys(keys, contact_id))
        async with self.database.transaction() as conn:  # two statements for the batch
            await contact_links.release(conn, plan.account, released, self.owner)
            await contact_links.link_many(conn, plan.account, links, now=now)
        for delivery_id in list(plan.then):
            choice = plan.choices[delivery_id]
            contact_id = created.get(choice.follows or "")
            if contact_id is None:
                plan.then.remove(delivery_id)
                plan.deferred.append(delivery_id)
            else:
                choice.contact_id = contact_id
                choice.matched = True

    async def remember(self, account: str, payload: Mapping[str, Any], contact_id: int) -> None:
        """A lead found in amoCRM after a lost answer: its contact now holds its keys."""
        dedup = await self.mode(account)
        keys = person_of(payload.get("contact") or {}).keys_for(dedup)
        if keys:
            async with self.database.transaction() as conn:
                await contact_links.link(
                    conn, account, [str(k) for k in keys], contact_id, now=self.clock()
                )

    async def forget(self, account: str, contact_id: int) -> None:
        """amoCRM refused a linked contact (deleted, merged, declined): never link it again."""
        self.index(account).drop(contact_id)
        await self.searches.forget_contact(account, contact_id)
        async with self.database.transaction() as conn:
            await contact_links.forget_contact(conn, account, contact_id)
        log.info("contacts.forgotten", account=account, contact_id=contact_id)


def _may_add(group: Group, card: ContactCard | None, indexed: bool, region: str) -> bool:
    """Whether the lead may have values its contact lacks. Unknown to a usable index means
    hidden (an unaccepted unsorted item's contact), which amoCRM would not list anyway."""
    if card is None:
        return not indexed
    added = additions(group.person, card, region)
    return bool(added.phones or added.emails)


def _ambiguity(match: Match) -> list[JSON]:
    if not match.ambiguous:
        return []
    ids = ", ".join(str(i) for i in match.contact_ids)
    return [
        {
            "field": "contact",
            "problem": AMBIGUOUS.format(ids=ids, chosen=match.contact_id),
            "value": list(match.contact_ids),
        }
    ]
