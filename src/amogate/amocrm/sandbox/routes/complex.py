"""`POST /api/v4/leads/complex`: a lead with a new or existing contact and company (§4.7).

Answers a bare JSON array `[{id, contact_id, company_id, request_id: [..], merged}]`.
At most 50 leads (more → 400 `Limit 50 per request`, an assumption: amoCRM's exact answer is not
documented), at most one contact and one company per lead. A contact `{"id": N}` links contact N
(unknown or deleted N → `NotSupportedChoice` on `_embedded.contacts.0.id`).

Where the lead lands: in the given `pipeline_id`/`status_id` (default: the first stage of the
main pipeline), like `POST /api/v4/leads` — unless `_embedded.metadata` is given. Metadata
marks an incoming lead (amoCRM's PHP example sends it for "new" leads): with `category` `forms`
(which then needs `form_id`, `form_name`, `form_page`, `form_sent_at`, as unsorted forms do) or
`sip`, the lead goes to the Unsorted stage of its pipeline as an unsorted item of that category,
and a new contact stays hidden until the item is accepted. Metadata without a known category →
`FieldMissing`/`NotSupportedChoice` on `_embedded.metadata.category` (assumption: stricter than
silently guessing, so a client cannot come to rely on a guess). So a client that wants the lead
in a pipeline stage must not send metadata.

Duplicate control is an admin setting in amoCRM with no request flag; the sandbox has it off
(`merged` is always false) unless `SandboxConfig.duplicate_control` / `PATCH
/_sandbox/settings {"duplicate_control": true}` switches it on. Then, simplified: a NEW contact
whose phone (same digits) or email (case-insensitive) equals a visible existing contact's is
not created; the lead is linked to that contact (the most recently updated one), which stays as
it was, and the answer says `merged: true`. Leads are never merged.

amoCRM keeps no per-lead external id: `_embedded.source` names a source (an integration's
channel), not the lead, and `request_id` is only echoed. To find a lead again after a lost
answer, write your own id into a lead custom field and look for it with `query` or by
`filter[created_at][from]`.

Webhooks: `add_lead` for each lead, `add_contact` for each new visible contact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from amogate.amocrm.sandbox import webhook_items
from amogate.amocrm.sandbox.drafts import (
    CompanyDraft,
    ContactDraft,
    LeadDraft,
    company_draft,
    contact_draft,
    lead_draft,
    save_company,
    save_contact,
    save_lead,
)
from amogate.amocrm.sandbox.entities import Contact
from amogate.amocrm.sandbox.responses import ApiError, hal, problem
from amogate.amocrm.sandbox.routes.common import state_of
from amogate.amocrm.sandbox.routes.unsorted import METADATA_REQUIRED, FormDraft, save_unsorted
from amogate.amocrm.sandbox.search import phone_digits
from amogate.amocrm.sandbox.state import SandboxState
from amogate.amocrm.sandbox.validation import (
    MAX_BATCH,
    ItemErrors,
    Validation,
    read_batch,
    request_id_of,
)

JSON = dict[str, Any]
MAX_COMPLEX = 50
ONE_ELEMENT = "This collection should contain 1 element or less."
CATEGORIES = ("forms", "sip")


@dataclass
class ComplexDraft:
    request_id: str
    lead: LeadDraft
    contact: ContactDraft | None
    company: CompanyDraft | None
    metadata: JSON | None


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
        drafts.append(_draft(state, item, request_id_of(item, index), errors))
    validation.raise_if_failed()
    return hal([_save(state, draft) for draft in drafts])


def _draft(state: SandboxState, item: JSON, request_id: str, errors: ItemErrors) -> ComplexDraft:
    embedded = item.get("_embedded") if isinstance(item.get("_embedded"), dict) else {}
    assert isinstance(embedded, dict)
    lead_raw = {k: v for k, v in item.items() if k != "_embedded"}
    lead_raw["_embedded"] = {"tags": embedded.get("tags"), "source": embedded.get("source")}
    lead = lead_draft(state, lead_raw, errors)
    contacts = embedded.get("contacts") or []
    companies = embedded.get("companies") or []
    for key, given in (("contacts", contacts), ("companies", companies)):
        if not isinstance(given, list) or len(given) > 1:
            errors.add("InvalidType", f"_embedded.{key}", ONE_ELEMENT)
    contact = (
        contact_draft(state, contacts[0], errors, "_embedded.contacts.0.", by_id=True)
        if isinstance(contacts, list) and len(contacts) == 1 and isinstance(contacts[0], dict)
        else None
    )
    company = (
        company_draft(state, companies[0], errors, "_embedded.companies.0.")
        if isinstance(companies, list) and len(companies) == 1 and isinstance(companies[0], dict)
        else None
    )
    metadata = _metadata(state, embedded, lead, errors)
    return ComplexDraft(request_id, lead, contact, company, metadata)


def _metadata(
    state: SandboxState, embedded: JSON, lead: LeadDraft, errors: ItemErrors
) -> JSON | None:
    """The checked `_embedded.metadata`, or None when the lead goes straight to a stage."""
    metadata = embedded.get("metadata")
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        errors.invalid_type("_embedded.metadata", "object")
        return None
    category = metadata.get("category")
    if category is None:
        errors.missing("_embedded.metadata.category")
    elif category not in CATEGORIES:
        errors.bad_choice("_embedded.metadata.category")
    elif category == "forms":
        for key in METADATA_REQUIRED:
            if metadata.get(key) in (None, ""):
                errors.missing(f"_embedded.metadata.{key}")
    pipeline = state.pipeline(lead.pipeline_id)
    if pipeline is not None and not pipeline["is_unsorted_on"]:
        errors.bad_choice("pipeline_id")
    return metadata


def _save(state: SandboxState, draft: ComplexDraft) -> JSON:
    if draft.metadata is not None:
        return _save_incoming(state, draft)
    merged = False
    contact: Contact | None = None
    if draft.contact is not None:
        duplicate = _duplicate_of(state, draft.contact) if state.duplicate_control else None
        merged = duplicate is not None
        contact = duplicate or save_contact(state, draft.contact)
    company = None if draft.company is None else save_company(state, draft.company)
    if contact is not None:
        draft.lead.contact_ids = [contact.id]
    if company is not None:
        draft.lead.company_ids = [company.id]
        if contact is not None and company.id not in contact.company_ids:
            contact.company_ids.append(company.id)
    lead = save_lead(state, draft.lead)
    webhook_items.lead_added(state, lead)
    created = draft.contact is not None and draft.contact.existing_id is None and not merged
    if contact is not None and created:
        webhook_items.contact_added(state, contact)
    return {
        "id": lead.id,
        "contact_id": None if contact is None else contact.id,
        "company_id": None if company is None else company.id,
        "request_id": [draft.request_id],
        "merged": merged,
    }


def _save_incoming(state: SandboxState, draft: ComplexDraft) -> JSON:
    """A lead with metadata: an unsorted item of the metadata's category."""
    assert draft.metadata is not None
    pipeline = state.pipeline(draft.lead.pipeline_id)
    assert pipeline is not None
    metadata = {k: v for k, v in draft.metadata.items() if k != "category"}
    item = save_unsorted(
        state,
        FormDraft(
            request_id=draft.request_id,
            source_uid="",
            source_name=str(metadata.get("form_name") or "API"),
            pipeline=pipeline,
            created_at=None,
            metadata=metadata,
            lead=draft.lead,
            contact=draft.contact,
            company=draft.company,
            category=str(draft.metadata["category"]),
        ),
    )
    return {
        "id": item.lead_id,
        "contact_id": item.contact_id,
        "company_id": item.company_id,
        "request_id": [draft.request_id],
        "merged": False,
    }


def _duplicate_of(state: SandboxState, draft: ContactDraft) -> Contact | None:
    """The visible contact sharing a phone (digits) or email with a new contact, if any."""
    if draft.existing_id is not None:
        return None
    phones, emails = _keys(draft.custom_fields_values)
    if not phones and not emails:
        return None
    found = []
    for contact in state.contacts.values():
        if contact.is_deleted or contact.is_unsorted:
            continue
        their_phones, their_emails = _keys(contact.custom_fields_values)
        if phones & their_phones or emails & their_emails:
            found.append(contact)
    return max(found, key=lambda c: (c.updated_at, c.id), default=None)


def _keys(values: list[JSON] | None) -> tuple[set[str], set[str]]:
    phones: set[str] = set()
    emails: set[str] = set()
    for field in values or []:
        for value in field["values"]:
            text = str(value.get("value") or "").strip()
            if field.get("field_code") == "PHONE" and phone_digits(text):
                phones.add(phone_digits(text))
            elif field.get("field_code") == "EMAIL" and text:
                emails.add(text.casefold())
    return phones, emails


ROUTES = [Route("/api/v4/leads/complex", create_complex, methods=["POST"])]
