"""`POST /api/v4/leads/complex`: a lead with a new or existing contact and company (§4.7).

Answers a bare JSON array `[{id, contact_id, company_id, request_id: [..], merged}]`.
At most 50 leads (more → 400 `Limit 50 per request`, an assumption: amoCRM's exact answer is not
documented), at most one contact and one company per lead. Duplicate control is treated as
switched off in the account (it is an admin setting), so `merged` is always false; a lead with
`_embedded.metadata` is created like any other lead (assumption).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from amogate.amocrm.sandbox.drafts import (
    company_draft,
    contact_draft,
    lead_draft,
    save_company,
    save_contact,
    save_lead,
)
from amogate.amocrm.sandbox.responses import ApiError, hal, problem
from amogate.amocrm.sandbox.routes.common import state_of
from amogate.amocrm.sandbox.validation import MAX_BATCH, Validation, read_batch, request_id_of

JSON = dict[str, Any]
MAX_COMPLEX = 50


async def create_complex(request: Request) -> Response:
    state = state_of(request)
    items = await read_batch(request, MAX_BATCH)
    if len(items) > MAX_COMPLEX:
        raise ApiError(problem(400, f"Limit {MAX_COMPLEX} per request"))
    validation = Validation()
    drafts = []
    for index, item in enumerate(items):
        errors = validation.item(request_id_of(item, index))
        if not isinstance(item, dict):
            errors.invalid_type("", "array")
            continue
        embedded = item.get("_embedded") if isinstance(item.get("_embedded"), dict) else {}
        assert isinstance(embedded, dict)
        lead_raw = {k: v for k, v in item.items() if k != "_embedded"}
        lead_raw["_embedded"] = {"tags": embedded.get("tags"), "source": embedded.get("source")}
        lead_d = lead_draft(state, lead_raw, errors)
        contacts = embedded.get("contacts") or []
        companies = embedded.get("companies") or []
        for key, given in (("contacts", contacts), ("companies", companies)):
            if not isinstance(given, list) or len(given) > 1:
                errors.add(
                    "InvalidType",
                    f"_embedded.{key}",
                    "This collection should contain 1 element or less.",
                )
        contact_d = (
            contact_draft(state, contacts[0], errors, "_embedded.contacts.0.", by_id=True)
            if isinstance(contacts, list) and len(contacts) == 1 and isinstance(contacts[0], dict)
            else None
        )
        company_d = (
            company_draft(state, companies[0], errors, "_embedded.companies.0.")
            if isinstance(companies, list)
            and len(companies) == 1
            and isinstance(companies[0], dict)
            else None
        )
        drafts.append((request_id_of(item, index), lead_d, contact_d, company_d))
    validation.raise_if_failed()
    result = []
    for request_id, lead_draft_, contact_draft_, company_draft_ in drafts:
        contact = None if contact_draft_ is None else save_contact(state, contact_draft_)
        company = None if company_draft_ is None else save_company(state, company_draft_)
        if contact is not None:
            lead_draft_.contact_ids = [contact.id]
        if company is not None:
            lead_draft_.company_ids = [company.id]
            if contact is not None and company.id not in contact.company_ids:
                contact.company_ids.append(company.id)
        lead = save_lead(state, lead_draft_)
        result.append(
            {
                "id": lead.id,
                "contact_id": None if contact is None else contact.id,
                "company_id": None if company is None else company.id,
                "request_id": [request_id],
                "merged": False,
            }
        )
    return hal(result)


ROUTES = [Route("/api/v4/leads/complex", create_complex, methods=["POST"])]
