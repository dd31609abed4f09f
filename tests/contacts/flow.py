"""The contact building blocks composed the way a delivery worker composes them, so tests can
drive them end to end against the sandbox: plan a batch, recall, search, decide, add values,
send complex leads (creators first, then the leads linking their contact), remember links."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from amogate.amocrm.client import AmoClient
from amogate.amocrm.errors import AmoPermanentError
from amogate.amocrm.models import contact_card
from amogate.contacts.batch import plan_batch, with_searches
from amogate.contacts.cache import ContactMemory
from amogate.contacts.matching import (
    DEFAULT_DEDUP,
    SEARCH_LIMIT,
    ContactDedup,
    ContactKey,
    Match,
    additions,
    contact_update,
    hits_by_key,
    person_of,
)
from amogate.leads.complex_item import (
    complex_item,
    delivery_field_request,
    has_delivery_field,
    linked_contact_refused,
)
from amogate.leads.mapping import AccountFields, stored_payload
from amogate.leads.reading import parse_lead_request

JSON = dict[str, Any]
ACCOUNT = "default"
REGION = "UZ"


@dataclass
class Sent:
    """What happened to one lead of a batch."""

    delivery_id: str
    lead_id: int
    contact_id: int
    match: Match | None


@dataclass
class DirectFlow:
    client: AmoClient
    memory: ContactMemory
    dedup: ContactDedup = DEFAULT_DEDUP
    searches: list[str] = field(default_factory=list)

    async def fields(self) -> AccountFields:
        leads = await self.client.list_custom_fields("leads")
        if not has_delivery_field(AccountFields(leads, [])):
            await self.client.create_custom_fields("leads", delivery_field_request())
            leads = await self.client.list_custom_fields("leads")
        return AccountFields(leads, await self.client.list_custom_fields("contacts"))

    async def send(self, bodies: list[JSON]) -> list[Sent]:
        fields = await self.fields()
        payloads = [payload_of(b) for b in bodies]
        ids = [uuid.uuid4().hex for _ in payloads]
        plan = plan_batch([person_of(p["contact"]) for p in payloads], self.dedup, REGION)
        known = await self.memory.recall(ACCOUNT, plan.keys)
        fresh = {}
        for query, keys in plan.searches(known).items():
            self.searches.append(query)
            found = await self.client.search_contacts(query, limit=SEARCH_LIMIT)
            fresh.update(hits_by_key(keys, [contact_card(c) for c in found], REGION))
        await self.memory.remember_search(ACCOUNT, fresh)
        known = with_searches(known, fresh)

        matches = [plan.decide(group, known, REGION) for group in plan.groups]
        updates = []
        for group, match in zip(plan.groups, matches, strict=True):
            if match is not None and match.card is not None:
                update = contact_update(match.card, additions(group.person, match.card, REGION))
                if update is not None:
                    updates.append(update)
        if updates:
            await self.client.update_contacts(updates)

        contact_of = {
            n: m.contact_id for n, m in enumerate(matches) if m is not None
        }  # group index -> contact id
        sent: dict[int, Sent] = {}
        creators = [g.creator for n, g in enumerate(plan.groups) if n not in contact_of]
        rest = [p for p in range(len(payloads)) if p not in creators]
        for batch in (creators, rest):
            if not batch:
                continue
            items = []
            for p in batch:
                n = plan.groups.index(plan.group_of(p))
                items.append(
                    complex_item(
                        payloads[p],
                        fields,
                        delivery_id=ids[p],
                        created_at=1_750_000_000,
                        contact_id=contact_of.get(n),
                    ).item
                )
            results = await self.client.create_leads_complex(items)
            for p, result in zip(batch, results, strict=True):
                assert result.contact_id is not None
                n = plan.groups.index(plan.group_of(p))
                contact_of.setdefault(n, result.contact_id)
                sent[p] = Sent(ids[p], result.lead_id, result.contact_id, matches[n])
        for n, group in enumerate(plan.groups):
            if group.keys:
                await self.memory.remember_link(ACCOUNT, group.keys, contact_of[n])
        return [sent[p] for p in range(len(payloads))]

    async def send_one_recovering(self, body: JSON) -> Sent:
        """One lead; a remembered contact amoCRM no longer has is forgotten and the lead sent
        again (with a search, then a new contact)."""
        try:
            return (await self.send([body]))[0]
        except AmoPermanentError as exc:
            errors = [e for item in exc.validation_errors for e in item.errors]
            if not linked_contact_refused(errors):
                raise
            keys = person_of(payload_of(body)["contact"]).keys_for(self.dedup)
            known = await self.memory.recall(ACCOUNT, keys)
            for link in known.links.values():
                await self.memory.forget_contact(ACCOUNT, link.contact_id)
            return (await self.send([body]))[0]


def payload_of(body: JSON) -> JSON:
    return stored_payload(parse_lead_request(body), REGION)


def phone_keys(phone: str) -> tuple[ContactKey, ...]:
    """The keys of a lead giving only ``phone``."""
    return person_of(
        payload_of({"lead": {"name": "x"}, "contact": {"phone": phone}})["contact"]
    ).keys_for()
