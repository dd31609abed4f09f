"""Unsorted (incoming leads), category `forms` (amocrm-api.md §4.8).

Create: each item needs `source_name`, `source_uid` and a top-level `metadata` with `form_id`,
`form_name`, `form_page` and `form_sent_at` (the fields the PHP client always sends — assumed
required); missing ones → `FieldMissing`. The lead lands in the pipeline's Unsorted stage
(main pipeline by default). A new contact stays hidden from contact lists and `query` searches
until acceptance; a contact given as `{"id": N}` links existing contact N (it stays visible;
unknown N → `NotSupportedChoice` on `_embedded.contacts.0.id`).
Assumptions: up to 250 items per request; a repeated `source_uid` is accepted as a new item
(Kommo's behaviour; the sandbox counts it in `/_sandbox/stats` so tests can catch duplicates);
accepted and declined items leave the list but stay readable by uid. Declining deletes the
lead and a hidden contact — unless another lead uses that contact, which then becomes visible.
Webhooks: creating announces `add_lead`; accepting announces `status_lead` and `update_lead`
for the lead and `add_contact` for a contact that becomes visible.
List filters: `filter[uid]`, `filter[category][]`, `filter[pipeline_id]`, `order[created_at]`,
and — only with `SandboxConfig.unsorted_source_uid_filter` — the sandbox extension
`filter[source_uid]` (real amoCRM ignores it).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from amogate.amocrm.sandbox import render, webhook_items
from amogate.amocrm.sandbox.drafts import (
    CompanyDraft,
    ContactDraft,
    LeadDraft,
    company_draft,
    contact_draft,
    first_stage,
    lead_draft,
    save_company,
    save_contact,
    save_lead,
    unsorted_stage,
)
from amogate.amocrm.sandbox.entities import UnsortedItem
from amogate.amocrm.sandbox.responses import hal, no_content, problem
from amogate.amocrm.sandbox.routes.common import int_list, listing, ordered, state_of
from amogate.amocrm.sandbox.state import SandboxState
from amogate.amocrm.sandbox.validation import (
    ItemErrors,
    Validation,
    read_batch,
    read_json,
    request_id_of,
)

JSON = dict[str, Any]
METADATA_REQUIRED = ("form_id", "form_name", "form_page", "form_sent_at")
ONE_ELEMENT = "This collection should contain 1 element or less."


@dataclass
class FormDraft:
    request_id: str
    source_uid: str
    source_name: str
    pipeline: JSON
    created_at: int | None
    metadata: JSON
    lead: LeadDraft
    contact: ContactDraft | None
    company: CompanyDraft | None
    category: str = "forms"


async def create_forms(request: Request) -> Response:
    state = state_of(request)
    items = await read_batch(request)
    validation = Validation()
    drafts: list[FormDraft] = []
    for index, item in enumerate(items):
        errors = validation.item(request_id_of(item, index))
        if not isinstance(item, dict):
            errors.invalid_type("", "array")
            continue
        draft = _form_draft(state, item, request_id_of(item, index), errors)
        if draft is not None:
            drafts.append(draft)
    validation.raise_if_failed()
    created = [save_unsorted(state, draft) for draft in drafts]
    body = [
        {
            "uid": item.uid,
            "account_id": state.account_id,
            "request_id": draft.request_id,
            "_links": {"self": {"href": f"/api/v4/leads/unsorted/{item.uid}"}},
            "_embedded": render.unsorted_links(item),
        }
        for draft, item in zip(drafts, created, strict=True)
    ]
    return hal({"_total_items": len(body), "_embedded": {"unsorted": body}})


async def list_unsorted(request: Request) -> Response:
    state = state_of(request)
    params = request.query_params
    rows = [u for u in state.unsorted.values() if u.status == "new"]
    uids = params.getlist("filter[uid][]") + params.getlist("filter[uid]")
    if uids:
        rows = [u for u in rows if u.uid in uids]
    categories = params.getlist("filter[category][]") + params.getlist("filter[category]")
    if categories:
        rows = [u for u in rows if u.category in categories]
    pipelines = int_list(request, "filter[pipeline_id]")
    if pipelines:
        rows = [u for u in rows if u.pipeline_id in pipelines]
    if state.config.unsorted_source_uid_filter:
        wanted = params.getlist("filter[source_uid][]") + params.getlist("filter[source_uid]")
        if wanted:
            rows = [u for u in rows if u.source_uid in wanted]
    rows = ordered(request, rows, {"created_at": lambda u: (u.created_at, u.uid)})
    return listing(request, [render.unsorted(state, u) for u in rows], "unsorted", totals=True)


async def get_unsorted(request: Request) -> Response:
    state = state_of(request)
    found = state.unsorted.get(str(request.path_params["uid"]))
    return no_content() if found is None else hal(render.unsorted(state, found))


async def summary(request: Request) -> Response:
    state = state_of(request)
    rows = list(state.unsorted.values())
    low = _int_param(request, "filter[created_at][from]")
    high = _int_param(request, "filter[created_at][to]")
    rows = [
        u
        for u in rows
        if (low is None or u.created_at >= low) and (high is None or u.created_at <= high)
    ]
    statuses = Counter(u.status for u in rows)
    return hal(
        {
            "total": len(rows),
            "accepted": statuses["accepted"],
            "declined": statuses["declined"],
            "average_sort_time": 0,
            "categories": dict(Counter(u.category for u in rows)),
        }
    )


async def accept(request: Request) -> Response:
    state = state_of(request)
    item = state.unsorted.get(str(request.path_params["uid"]))
    if item is None:
        return problem(404, "Unsorted not found")
    if item.status != "new":
        return problem(400, "Unsorted already processed")
    body = await _optional_object(request)
    pipeline = state.pipeline(item.pipeline_id)
    assert pipeline is not None
    status_id = body.get("status_id")
    if status_id is None:
        status_id = first_stage(pipeline)
    elif not any(
        s["id"] == status_id and s["type"] == 0 for s in pipeline["_embedded"]["statuses"]
    ):
        validation = Validation()
        validation.item("0").bad_choice("status_id")
        raise validation.error()
    lead = state.leads[item.lead_id]
    before = webhook_items.LeadBefore.of(lead)
    lead.status_id = int(status_id)
    lead.updated_at = state.now()
    item.status = "accepted"
    webhook_items.lead_changed(state, lead, before)
    if item.contact_id is not None:
        _reveal(state, item.contact_id)
    return hal(_action_result(item))


async def decline(request: Request) -> Response:
    state = state_of(request)
    item = state.unsorted.get(str(request.path_params["uid"]))
    if item is None:
        return problem(404, "Unsorted not found")
    if item.status != "new":
        return problem(400, "Unsorted already processed")
    state.leads[item.lead_id].is_deleted = True
    item.status = "declined"
    contact_id = item.contact_id
    if contact_id is not None and state.contacts[contact_id].is_unsorted:
        if any(
            contact_id in lead.contact_ids for lead in state.leads.values() if not lead.is_deleted
        ):
            _reveal(state, contact_id)
        else:
            state.contacts[contact_id].is_deleted = True
    return hal(_action_result(item))


def _reveal(state: SandboxState, contact_id: int) -> None:
    """A hidden contact of an unsorted item appears in lists (and is announced)."""
    contact = state.contacts[contact_id]
    if contact.is_unsorted:
        contact.is_unsorted = False
        webhook_items.contact_added(state, contact)


def _form_draft(
    state: SandboxState, item: JSON, request_id: str, errors: ItemErrors
) -> FormDraft | None:
    for key in ("source_name", "source_uid"):
        if not isinstance(item.get(key), str) or not item[key]:
            errors.missing(key)
    metadata: JSON = {}
    if isinstance(item.get("metadata"), dict):
        metadata = item["metadata"]
        for key in METADATA_REQUIRED:
            if metadata.get(key) in (None, ""):
                errors.missing(f"metadata.{key}")
    else:
        errors.missing("metadata")
    pipeline = state.main_pipeline()
    if item.get("pipeline_id") is not None:
        found = (
            state.pipeline(item["pipeline_id"]) if isinstance(item["pipeline_id"], int) else None
        )
        if found is None or not found["is_unsorted_on"]:
            errors.bad_choice("pipeline_id")
        else:
            pipeline = found
    created_at = item.get("created_at")
    if created_at is not None and (isinstance(created_at, bool) or not isinstance(created_at, int)):
        errors.invalid_type("created_at", "int")
        created_at = None
    embedded = item.get("_embedded") if isinstance(item.get("_embedded"), dict) else {}
    assert isinstance(embedded, dict)
    leads = _one(embedded, "leads", errors)
    contacts = _one(embedded, "contacts", errors)
    companies = _one(embedded, "companies", errors)
    lead = lead_draft(state, leads or {}, errors, "_embedded.leads.0.", links=False)
    contact = (
        None
        if contacts is None
        else contact_draft(state, contacts, errors, "_embedded.contacts.0.", by_id=True)
    )
    company = (
        None
        if companies is None
        else company_draft(state, companies, errors, "_embedded.companies.0.")
    )
    if errors.errors:
        return None
    return FormDraft(
        request_id=request_id,
        source_uid=item["source_uid"],
        source_name=item["source_name"],
        pipeline=pipeline,
        created_at=created_at,
        metadata=metadata,
        lead=lead,
        contact=contact,
        company=company,
    )


def _one(embedded: JSON, key: str, errors: ItemErrors) -> JSON | None:
    """The single lead/contact/company an unsorted item may carry."""
    raw = embedded.get(key)
    if raw is None or raw == []:
        return None
    if not isinstance(raw, list) or not all(isinstance(e, dict) for e in raw):
        errors.invalid_type(f"_embedded.{key}", "array")
        return None
    if len(raw) > 1:
        errors.add("InvalidType", f"_embedded.{key}", ONE_ELEMENT)
        return None
    first: JSON = raw[0]
    return first


def save_unsorted(state: SandboxState, draft: FormDraft) -> UnsortedItem:
    """Store a checked item: the lead in the Unsorted stage, a new contact hidden."""
    draft.lead.pipeline_id = int(draft.pipeline["id"])
    draft.lead.status_id = unsorted_stage(draft.pipeline)
    if draft.created_at is not None and draft.lead.created_at is None:
        draft.lead.created_at = draft.created_at
    lead = save_lead(state, draft.lead)
    contact = None if draft.contact is None else save_contact(state, draft.contact, hidden=True)
    company = None if draft.company is None else save_company(state, draft.company)
    if contact is not None:
        lead.contact_ids = [contact.id]
    if company is not None:
        lead.company_ids = [company.id]
        if contact is not None and company.id not in contact.company_ids:
            contact.company_ids.append(company.id)
    if any(u.source_uid == draft.source_uid for u in state.unsorted.values()):
        state.duplicate_source_uids += 1
    item = UnsortedItem(
        uid=state.next_uid(),
        source_uid=draft.source_uid,
        source_name=draft.source_name,
        category=draft.category,
        pipeline_id=int(draft.pipeline["id"]),
        created_at=draft.created_at or state.now(),
        metadata=draft.metadata,
        lead_id=lead.id,
        contact_id=None if contact is None else contact.id,
        company_id=None if company is None else company.id,
    )
    state.unsorted[item.uid] = item
    webhook_items.lead_added(state, lead)
    return item


def _action_result(item: UnsortedItem) -> JSON:
    return {
        "uid": item.uid,
        "category": item.category,
        "pipeline_id": item.pipeline_id,
        "created_at": item.created_at,
        "_embedded": render.unsorted_links(item),
        "_links": {"self": {"href": f"/api/v4/leads/unsorted/{item.uid}"}},
    }


async def _optional_object(request: Request) -> JSON:
    if not (await request.body()).strip():
        return {}
    data = await read_json(request)
    return data if isinstance(data, dict) else {}


def _int_param(request: Request, key: str) -> int | None:
    raw = request.query_params.get(key)
    return int(raw) if raw is not None and raw.isdigit() else None


ROUTES = [
    Route("/api/v4/leads/unsorted/forms", create_forms, methods=["POST"]),
    Route("/api/v4/leads/unsorted", list_unsorted, methods=["GET"]),
    Route("/api/v4/leads/unsorted/summary", summary, methods=["GET"]),
    Route("/api/v4/leads/unsorted/{uid}", get_unsorted, methods=["GET"]),
    Route("/api/v4/leads/unsorted/{uid}/accept", accept, methods=["POST"]),
    Route("/api/v4/leads/unsorted/{uid}/decline", decline, methods=["DELETE"]),
]
