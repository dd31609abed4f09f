"""Every request the intake refuses changes nothing: no delivery, attempt or idempotency row,
nothing sent to amoCRM — whichever rule refused it.

The cases are one table: a rule that refuses a request gets a row here. Only a form developer's
mistakes are refused (SPEC §11); a visitor's flaws are warnings (tests/leads/test_soft_intake.py).
Each row builds its body from the account's lead fields and may add headers; `status` is what
the gateway answers and `details`, where given, the exact original texts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import func, select

from amogate.app_state import state_of
from amogate.settings import Settings
from amogate.storage.tables import metadata
from tests.leads.helpers import JSON, URL, lead_fields, simple_lead, unsorted_items
from tests.support.gateway import Harness, connected_gateway

Fields = list[JSON]


@dataclass(frozen=True)
class Refused:
    build: Callable[[Fields], Any]
    status: int = 422
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # sent as is instead of `build`'s JSON
    details: dict[str, str] | None = None  # the exact details, where they are a contract


def _with_lead(**changes: Any) -> Callable[[Fields], JSON]:
    def build(_: Fields) -> JSON:
        body = simple_lead(1)
        body["lead"].update(changes)
        return body

    return build


def _with_contact(contact: Any) -> Callable[[Fields], JSON]:
    def build(_: Fields) -> JSON:
        return {**simple_lead(1), "contact": contact}

    return build


def _with(**changes: Any) -> Callable[[Fields], JSON]:
    return lambda _: {**simple_lead(1), **changes}


def _without(key: str) -> Callable[[Fields], JSON]:
    return lambda _: {k: v for k, v in simple_lead(1).items() if k != key}


CASES: dict[str, Refused] = {
    "body is not an object": Refused(
        lambda _: [simple_lead(1)], details={"request": "Request body must be a JSON object"}
    ),
    "no lead": Refused(_without("lead"), details={"lead": "Lead object is required"}),
    "empty lead": Refused(_with(lead={}), details={"lead": "Lead object is required"}),
    "lead is not an object": Refused(
        _with(lead="Divan"), details={"lead": "Lead object is required"}
    ),
    "lead without a name": Refused(
        _with_lead(name=""), details={"lead.name": "Lead name is required"}
    ),
    "lead name of blanks": Refused(
        _with_lead(name="   "), details={"lead.name": "Lead name is required"}
    ),
    "no contact": Refused(_without("contact"), details={"contact": "Contact object is required"}),
    "empty contact": Refused(_with_contact({}), details={"contact": "Contact object is required"}),
    "contact is not an object": Refused(
        _with_contact("Ali"), details={"contact": "Contact object is required"}
    ),
    "no way to reach the person": Refused(
        _with_contact({"name": " ", "phone": "", "city": "Toshkent"}),
        details={"contact": "At least one contact field (name, phone, email) is required"},
    ),
    "empty Idempotency-Key": Refused(lambda _: simple_lead(1), headers={"Idempotency-Key": " "}),
    "malformed JSON": Refused(lambda _: None, status=400, raw=b'{"lead": '),
    "JSON nested too deep": Refused(lambda _: None, status=400, raw=b"[" * 100_000),
}


async def _row_counts(h: Harness) -> dict[str, int]:
    async with state_of(h.app).running().database.read() as conn:
        return {
            table.name: int(
                (await conn.execute(select(func.count()).select_from(table))).scalar_one()
            )
            for table in metadata.sorted_tables
        }


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
async def test_a_refused_request_stores_nothing_and_sends_nothing(
    settings: Settings, api_headers: dict[str, str], case: Refused
) -> None:
    # The worker runs and requests wait for it, so anything stored would also be sent.
    async with connected_gateway(settings, background=True, lead_sync_timeout=2) as h:
        fields = await lead_fields(h)
        before = await _row_counts(h)
        headers = {**api_headers, **case.headers}
        if case.raw is not None:
            headers["Content-Type"] = "application/json"
            response = await h.gateway.post(URL, content=case.raw, headers=headers)
        else:
            response = await h.gateway.post(URL, json=case.build(fields), headers=headers)

        assert response.status_code == case.status, response.text
        assert response.json()["success"] is False
        assert response.json()["details"], "a refusal names what is wrong"
        if case.details is not None:
            assert response.json()["details"] == case.details
        assert await _row_counts(h) == before
        assert await h.requests("/api/v4/leads/unsorted") == []
        assert await unsorted_items(h) == []
