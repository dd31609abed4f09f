"""All in-memory state of one sandbox account.

`reset()` returns the account to its seeded form: entities, the request log, faults, the budget,
webhook deliveries in flight, the runtime settings (`duplicate_control`, the webhook policy)
and every statistic are cleared and the seed is rebuilt. Tokens and authorization codes are
KEPT by default, so a client connected once stays connected across test cases; pass
`tokens=True` to drop them too.

`announce(code, event)` offers an amoCRM webhook event (e.g. `status_lead`) to every enabled
webhook subscribed to that code; `webhook_sender.py` sends it after the answer.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any

from amogate.amocrm.sandbox.budget import Budget
from amogate.amocrm.sandbox.clock import Clock, system_clock
from amogate.amocrm.sandbox.config import SandboxConfig
from amogate.amocrm.sandbox.entities import (
    Company,
    Contact,
    Lead,
    Note,
    Tag,
    UnsortedItem,
    Webhook,
)
from amogate.amocrm.sandbox.faults import FaultSet
from amogate.amocrm.sandbox.requestlog import RequestLog
from amogate.amocrm.sandbox.seed import SeededAccount, build_seed
from amogate.amocrm.sandbox.tokens import OAuthStats, TokenStore
from amogate.amocrm.sandbox.webhook_policy import WebhookPolicy
from amogate.amocrm.sandbox.webhook_sender import WebhookSender
from amogate.amocrm.webhook_format import WebhookEvent

JSON = dict[str, Any]

# First id of each kind; ids then count up, so every run numbers entities the same way.
FIRST_IDS = {
    "lead": 10_000_001,
    "contact": 20_000_001,
    "company": 30_000_001,
    "note": 40_000_001,
    "tag": 50_001,
    "webhook": 60_001,
    "field": 760_001,
    "unsorted": 1,
}


class SandboxState:
    def __init__(self, config: SandboxConfig, clock: Clock = system_clock) -> None:
        self.config = config
        self.clock = clock
        self.tokens = TokenStore(config, clock)
        self.faults = FaultSet(clock)
        self.budget = Budget(
            clock, config.rate_limit, config.block_after_s, config.block_duration_s
        )
        self.log = RequestLog()
        self.account_id = config.account_id
        self.policy = WebhookPolicy.from_config(config)
        self.duplicate_control = config.duplicate_control
        self.sender = WebhookSender(
            clock,
            self.policy,
            lambda webhook_id: self.webhooks.get(webhook_id),
            {
                "subdomain": config.subdomain,
                "id": str(config.account_id),
                "_links": {"self": config.base_url},
            },
        )
        self.seed: SeededAccount
        self.leads: dict[int, Lead]
        self.contacts: dict[int, Contact]
        self.companies: dict[int, Company]
        self.notes: dict[int, Note]
        self.unsorted: dict[str, UnsortedItem]
        self.webhooks: dict[int, Webhook]
        self.tags: dict[str, dict[int, Tag]]
        self.custom_fields: dict[str, list[JSON]]
        self.counters: Counter[str]
        self.duplicate_source_uids = 0
        self.reset()

    def now(self) -> int:
        """Unix seconds, what amoCRM stamps on entities."""
        return int(self.clock())

    def reset(self, *, tokens: bool = False) -> None:
        self.seed = build_seed(self.config.base_url, self.config.account_id)
        self.leads = {}
        self.contacts = {}
        self.companies = {}
        self.notes = {}
        self.unsorted = {}
        self.webhooks = {}
        self.tags = {"leads": {}, "contacts": {}, "companies": {}}
        self.custom_fields = {
            "leads": self.seed.lead_fields,
            "contacts": self.seed.contact_fields,
        }
        self.counters = Counter()
        self.duplicate_source_uids = 0
        self.sender.clear()
        fresh = WebhookPolicy.from_config(self.config)
        self.policy.update(fresh.as_dict())
        self.duplicate_control = self.config.duplicate_control
        self.faults.clear()
        self.faults.injected = 0
        self.budget.clear()
        self.log.clear()
        self.tokens.stats = OAuthStats()
        if tokens:
            self.tokens.clear()

    def announce(self, code: str, event: WebhookEvent) -> None:
        """Offer `event` to every enabled webhook subscribed to `code` (amoCRM's settings)."""
        for webhook in self.webhooks.values():
            if code in webhook.settings:
                self.sender.enqueue(webhook, code, event)

    def next_id(self, kind: str) -> int:
        value = FIRST_IDS[kind] + self.counters[kind]
        self.counters[kind] += 1
        return value

    def next_uid(self) -> str:
        """A 60-hex-digit unsorted uid, like amoCRM's; derived from a counter (reproducible)."""
        seq = self.next_id("unsorted")
        digest = hashlib.sha256(f"{self.account_id}:{seq}".encode()).hexdigest()
        return (digest + hashlib.sha256(digest.encode()).hexdigest())[:60]

    # --- lookups -------------------------------------------------------------------------

    def pipeline(self, pipeline_id: int) -> JSON | None:
        return next((p for p in self.seed.pipelines if p["id"] == pipeline_id), None)

    def main_pipeline(self) -> JSON:
        return next(p for p in self.seed.pipelines if p["is_main"])

    def user_ids(self) -> set[int]:
        return {int(u["id"]) for u in self.seed.users}

    def field_by_id(self, entity_type: str, field_id: int) -> JSON | None:
        return next((f for f in self.custom_fields[entity_type] if f["id"] == field_id), None)

    def field_by_code(self, entity_type: str, code: str) -> JSON | None:
        wanted = code.upper()
        return next(
            (f for f in self.custom_fields[entity_type] if (f["code"] or "").upper() == wanted),
            None,
        )

    def tag(self, entity_type: str, name: str) -> Tag:
        """The tag called `name`, created on first use (amoCRM creates tags given by name)."""
        tags = self.tags[entity_type]
        found = next((t for t in tags.values() if t.name == name), None)
        if found is None:
            found = Tag(self.next_id("tag"), name)
            tags[found.id] = found
        return found

    def stats(self) -> JSON:
        """Counters of `GET /_sandbox/stats` (all since the last reset).

        `by_endpoint` (`"GET /api/v4/leads/{id}"`: ids folded), `by_status` (`"none"` = no HTTP
        answer: down or hung), `by_fault`, `rate_limited` (budget 429s), `faults_injected`,
        `blocked`, `oauth` (`codes_issued`, `codes_exchanged`, `codes_rejected`,
        `refreshes_ok`, `refreshes_rejected`, `revoked_refresh_presented` — a refresh token used
        after it was revoked, `refresh_reused_in_grace` — a refresh token used twice before
        revocation, i.e. two refreshes raced, `revoked_access_presented`),
        `max_requests_per_second` per budget key (`token:<sha256 prefix>`, `client:<id>`,
        `ip:<addr>`; every request that reached the server, 429s included),
        `max_requests_per_second_any`, `entities` counts, `unsorted_duplicate_source_uids`,
        `webhooks` (see `WebhookSender.stats`).
        """
        by_token = self.budget.max_per_second
        return {
            "requests_total": sum(self.log.by_endpoint.values()),
            "by_endpoint": dict(sorted(self.log.by_endpoint.items())),
            "by_status": dict(sorted(self.log.by_status.items())),
            "by_fault": dict(sorted(self.log.by_fault.items())),
            "rate_limited": self.budget.limited,
            "faults_injected": self.faults.injected,
            "blocked": self.budget.blocked_until is not None,
            "oauth": self.tokens.stats.as_dict(),
            "max_requests_per_second": dict(sorted(by_token.items())),
            "max_requests_per_second_any": max(by_token.values(), default=0),
            "entities": {
                "leads": len(self.leads),
                "contacts": len(self.contacts),
                "companies": len(self.companies),
                "notes": len(self.notes),
                "unsorted": len(self.unsorted),
                "webhooks": len(self.webhooks),
            },
            "unsorted_duplicate_source_uids": self.duplicate_source_uids,
            "webhooks": self.sender.stats(),
        }
