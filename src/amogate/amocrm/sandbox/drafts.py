"""Checking and saving written leads, contacts and companies (amocrm-api.md §4.6, §4.10).

Every write is checked whole first (a draft per item, errors collected per item) and saved only
when the whole batch is valid, so a rejected request leaves no trace. Lead rules: `pipeline_id`
and `status_id` must exist and belong together; without them the lead lands in the first
regular stage of the main pipeline; the Unsorted stage cannot be set directly (assumption);
`responsible_user_id` must be a user (ISS-26); `_embedded.contacts`/`companies` link EXISTING
entities by id. Where a contact may be new or existing (unsorted forms, complex), `{"id": N}`
links contact N — other keys of that object are ignored — and an unknown or deleted N is
`NotSupportedChoice` on `..._embedded.contacts.0.id` (400), the shape amoCRM uses for unknown
ids elsewhere (amoCRM's exact answer here is not documented).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from amogate.amocrm.sandbox.entities import Company, Contact, Lead
from amogate.amocrm.sandbox.seed import ADMIN_USER_ID, LOST_STATUS_ID, WON_STATUS_ID
from amogate.amocrm.sandbox.state import SandboxState
from amogate.amocrm.sandbox.validation import ItemErrors
from amogate.amocrm.sandbox.values import (
    TagSpec,
    check_tags,
    custom_field_values,
    resolve_tags,
)

JSON = dict[str, Any]


@dataclass
class LeadDraft:
    name: str | None
    price: int
    pipeline_id: int
    status_id: int
    responsible_user_id: int
    created_by: int
    created_at: int | None
    custom_fields_values: list[JSON] | None
    tags: list[TagSpec] = field(default_factory=list)
    contact_ids: list[int] = field(default_factory=list)
    company_ids: list[int] = field(default_factory=list)
    source: JSON | None = None


@dataclass
class ContactDraft:
    name: str
    first_name: str
    last_name: str
    responsible_user_id: int
    created_by: int
    created_at: int | None
    custom_fields_values: list[JSON] | None
    tags: list[TagSpec] = field(default_factory=list)
    existing_id: int | None = None


@dataclass
class CompanyDraft:
    name: str
    existing_id: int | None = None


def first_stage(pipeline: JSON) -> int:
    """The first regular stage: where a lead lands without a status, or after acceptance."""
    regular = [
        s
        for s in pipeline["_embedded"]["statuses"]
        if s["type"] == 0 and s["id"] not in (WON_STATUS_ID, LOST_STATUS_ID)
    ]
    return int(min(regular, key=lambda s: s["sort"])["id"])


def unsorted_stage(pipeline: JSON) -> int:
    return int(next(s["id"] for s in pipeline["_embedded"]["statuses"] if s["type"] == 1))


def lead_draft(
    state: SandboxState,
    raw: JSON,
    errors: ItemErrors,
    prefix: str = "",
    *,
    links: bool = True,
) -> LeadDraft:
    """Check one lead object; `prefix` makes paths relative to the request item."""
    name = _text(raw, "name", errors, prefix)
    price = _int(raw, "price", errors, prefix, default=0)
    pipeline, status_id = _placement(state, raw, errors, prefix)
    responsible = _user(state, raw, errors, prefix)
    embedded = raw.get("_embedded") if isinstance(raw.get("_embedded"), dict) else {}
    assert isinstance(embedded, dict)
    draft = LeadDraft(
        name=name,
        price=price,
        pipeline_id=int(pipeline["id"]),
        status_id=status_id,
        responsible_user_id=responsible,
        created_by=_int(raw, "created_by", errors, prefix, default=ADMIN_USER_ID),
        created_at=_int_or_none(raw, "created_at", errors, prefix),
        custom_fields_values=custom_field_values(
            state, "leads", raw.get("custom_fields_values"), errors, f"{prefix}custom_fields_values"
        ),
        tags=check_tags(state, "leads", embedded.get("tags"), errors, f"{prefix}_embedded.tags"),
        source=embedded.get("source") if isinstance(embedded.get("source"), dict) else None,
    )
    if links:
        draft.contact_ids = _links(
            embedded.get("contacts"), state.contacts, errors, f"{prefix}_embedded.contacts"
        )
        draft.company_ids = _links(
            embedded.get("companies"), state.companies, errors, f"{prefix}_embedded.companies"
        )
    return draft


def save_lead(state: SandboxState, draft: LeadDraft) -> Lead:
    now = state.now()
    lead_id = state.next_id("lead")
    created_at = draft.created_at or now
    lead = Lead(
        id=lead_id,
        name=draft.name or f"Сделка #{lead_id}",
        price=draft.price,
        status_id=draft.status_id,
        pipeline_id=draft.pipeline_id,
        responsible_user_id=draft.responsible_user_id,
        created_by=draft.created_by,
        created_at=created_at,
        updated_at=created_at,
        custom_fields_values=draft.custom_fields_values,
        tag_ids=resolve_tags(state, "leads", draft.tags),
        contact_ids=list(draft.contact_ids),
        company_ids=list(draft.company_ids),
        closed_at=now if draft.status_id in (WON_STATUS_ID, LOST_STATUS_ID) else None,
        source=draft.source,
    )
    state.leads[lead.id] = lead
    return lead


def contact_draft(
    state: SandboxState, raw: JSON, errors: ItemErrors, prefix: str = "", *, by_id: bool = False
) -> ContactDraft:
    """Check one contact; with `by_id`, `{"id": N}` names an existing contact instead."""
    if by_id and "id" in raw:
        existing = raw["id"]
        known = isinstance(existing, int) and not isinstance(existing, bool)
        if not known or existing not in state.contacts or state.contacts[existing].is_deleted:
            errors.bad_choice(f"{prefix}id")
        return ContactDraft("", "", "", 0, 0, None, None, existing_id=existing)
    first = _text(raw, "first_name", errors, prefix) or ""
    last = _text(raw, "last_name", errors, prefix) or ""
    name = _text(raw, "name", errors, prefix) or " ".join(p for p in (first, last) if p)
    embedded = raw.get("_embedded") if isinstance(raw.get("_embedded"), dict) else {}
    assert isinstance(embedded, dict)
    return ContactDraft(
        name=name,
        first_name=first,
        last_name=last,
        responsible_user_id=_user(state, raw, errors, prefix),
        created_by=_int(raw, "created_by", errors, prefix, default=ADMIN_USER_ID),
        created_at=_int_or_none(raw, "created_at", errors, prefix),
        custom_fields_values=custom_field_values(
            state,
            "contacts",
            raw.get("custom_fields_values"),
            errors,
            f"{prefix}custom_fields_values",
        ),
        tags=check_tags(state, "contacts", embedded.get("tags"), errors, f"{prefix}_embedded.tags"),
    )


def save_contact(state: SandboxState, draft: ContactDraft, *, hidden: bool = False) -> Contact:
    if draft.existing_id is not None:
        return state.contacts[draft.existing_id]
    now = state.now()
    contact_id = state.next_id("contact")
    created_at = draft.created_at or now
    contact = Contact(
        id=contact_id,
        name=draft.name or f"Контакт #{contact_id}",
        first_name=draft.first_name,
        last_name=draft.last_name,
        responsible_user_id=draft.responsible_user_id,
        created_by=draft.created_by,
        created_at=created_at,
        updated_at=created_at,
        custom_fields_values=draft.custom_fields_values,
        tag_ids=resolve_tags(state, "contacts", draft.tags),
        is_unsorted=hidden,
    )
    state.contacts[contact.id] = contact
    return contact


def company_draft(
    state: SandboxState, raw: JSON, errors: ItemErrors, prefix: str = ""
) -> CompanyDraft:
    if "id" in raw:
        existing = raw["id"]
        if not isinstance(existing, int) or existing not in state.companies:
            errors.bad_choice(f"{prefix}id")
        return CompanyDraft("", existing_id=existing)
    return CompanyDraft(_text(raw, "name", errors, prefix) or "")


def save_company(state: SandboxState, draft: CompanyDraft) -> Company:
    if draft.existing_id is not None:
        return state.companies[draft.existing_id]
    now = state.now()
    company_id = state.next_id("company")
    company = Company(
        id=company_id,
        name=draft.name or f"Компания #{company_id}",
        responsible_user_id=ADMIN_USER_ID,
        created_by=ADMIN_USER_ID,
        created_at=now,
        updated_at=now,
    )
    state.companies[company.id] = company
    return company


def _placement(state: SandboxState, raw: JSON, errors: ItemErrors, prefix: str) -> tuple[JSON, int]:
    """The lead's pipeline and status, checked together."""
    pipeline = state.main_pipeline()
    pipeline_id = raw.get("pipeline_id")
    if pipeline_id is not None:
        found = state.pipeline(pipeline_id) if isinstance(pipeline_id, int) else None
        if found is None:
            errors.bad_choice(f"{prefix}pipeline_id")
        else:
            pipeline = found
    status_id = raw.get("status_id")
    if status_id is None:
        return pipeline, first_stage(pipeline)
    if not isinstance(status_id, int) or isinstance(status_id, bool):
        errors.invalid_type(f"{prefix}status_id", "int")
        return pipeline, first_stage(pipeline)
    if pipeline_id is None and status_id not in (WON_STATUS_ID, LOST_STATUS_ID):
        # A status alone picks its pipeline.
        owner = next(
            (
                p
                for p in state.seed.pipelines
                if any(s["id"] == status_id for s in p["_embedded"]["statuses"])
            ),
            None,
        )
        pipeline = owner or pipeline
    status = next((s for s in pipeline["_embedded"]["statuses"] if s["id"] == status_id), None)
    if status is None or status["type"] == 1:
        errors.bad_choice(f"{prefix}status_id")
        return pipeline, first_stage(pipeline)
    return pipeline, status_id


def _user(state: SandboxState, raw: JSON, errors: ItemErrors, prefix: str) -> int:
    user_id = raw.get("responsible_user_id")
    if user_id is None:
        return ADMIN_USER_ID
    if not isinstance(user_id, int) or user_id not in state.user_ids():
        errors.bad_choice(f"{prefix}responsible_user_id")
        return ADMIN_USER_ID
    return user_id


def _links(raw: Any, known: dict[int, Any], errors: ItemErrors, path: str) -> list[int]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.invalid_type(path, "array")
        return []
    ids: list[int] = []
    for i, entry in enumerate(raw):
        entity_id = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(entity_id, int) or entity_id not in known:
            errors.bad_choice(f"{path}.{i}.id")
            continue
        ids.append(entity_id)
    return ids


def _text(raw: JSON, key: str, errors: ItemErrors, prefix: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        errors.invalid_type(f"{prefix}{key}", "string")
        return None
    return value


def _int(raw: JSON, key: str, errors: ItemErrors, prefix: str, *, default: int) -> int:
    value = _int_or_none(raw, key, errors, prefix)
    return default if value is None else value


def _int_or_none(raw: JSON, key: str, errors: ItemErrors, prefix: str) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        errors.invalid_type(f"{prefix}{key}", "int")
        return None
    return value
