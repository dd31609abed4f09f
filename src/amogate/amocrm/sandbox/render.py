"""Stored entities in amoCRM's read shapes (amocrm-api.md §4.6, §4.8–§4.10)."""

from __future__ import annotations

from typing import Any

from amogate.amocrm.sandbox.entities import Contact, Lead, Note, UnsortedItem, Webhook
from amogate.amocrm.sandbox.state import SandboxState

JSON = dict[str, Any]


def href(state: SandboxState, path: str) -> JSON:
    return {"self": {"href": f"{state.config.base_url}/api/v4/{path}"}}


def lead(state: SandboxState, item: Lead, parts: set[str]) -> JSON:
    embedded: JSON = {
        "tags": [state.tags["leads"][t].as_api() for t in item.tag_ids],
        "companies": [{"id": c, "_links": href(state, f"companies/{c}")} for c in item.company_ids],
    }
    if "contacts" in parts:
        embedded["contacts"] = [
            {"id": c, "is_main": i == 0, "_links": href(state, f"contacts/{c}")}
            for i, c in enumerate(item.contact_ids)
        ]
    if "source" in parts and item.source is not None:
        embedded["source"] = item.source
    body: JSON = {
        "id": item.id,
        "name": item.name,
        "price": item.price,
        "responsible_user_id": item.responsible_user_id,
        "group_id": 0,
        "status_id": item.status_id,
        "pipeline_id": item.pipeline_id,
        "loss_reason_id": item.loss_reason_id,
        "created_by": item.created_by,
        "updated_by": item.created_by,
        "created_at": item.created_at,
        "updated_at": item.updated_at,
        "closed_at": item.closed_at,
        "closest_task_at": None,
        "is_deleted": item.is_deleted,
        "custom_fields_values": item.custom_fields_values,
        "score": None,
        "account_id": state.account_id,
        "labor_cost": None,
        "_links": href(state, f"leads/{item.id}"),
        "_embedded": embedded,
    }
    return body


def contact(state: SandboxState, item: Contact, parts: set[str]) -> JSON:
    embedded: JSON = {
        "tags": [state.tags["contacts"][t].as_api() for t in item.tag_ids],
        "companies": [{"id": c, "_links": href(state, f"companies/{c}")} for c in item.company_ids],
    }
    if "leads" in parts:
        embedded["leads"] = [
            {"id": lead_.id, "_links": href(state, f"leads/{lead_.id}")}
            for lead_ in state.leads.values()
            if item.id in lead_.contact_ids and not lead_.is_deleted
        ]
    return {
        "id": item.id,
        "name": item.name,
        "first_name": item.first_name,
        "last_name": item.last_name,
        "responsible_user_id": item.responsible_user_id,
        "group_id": 0,
        "created_by": item.created_by,
        "updated_by": item.created_by,
        "created_at": item.created_at,
        "updated_at": item.updated_at,
        "closest_task_at": None,
        "is_deleted": item.is_deleted,
        "is_unsorted": item.is_unsorted,
        "custom_fields_values": item.custom_fields_values,
        "account_id": state.account_id,
        "_links": href(state, f"contacts/{item.id}"),
        "_embedded": embedded,
    }


def note(state: SandboxState, item: Note) -> JSON:
    return {
        "id": item.id,
        "entity_id": item.entity_id,
        "created_by": item.created_by,
        "updated_by": item.created_by,
        "created_at": item.created_at,
        "updated_at": item.updated_at,
        "responsible_user_id": item.responsible_user_id,
        "group_id": 0,
        "note_type": item.note_type,
        "params": item.params,
        "account_id": state.account_id,
        "_links": href(state, f"{item.entity_type}/{item.entity_id}/notes/{item.id}"),
    }


def unsorted_links(item: UnsortedItem) -> JSON:
    """The `_embedded` ids of an unsorted item; hrefs are relative, as amoCRM returns them."""
    return {
        "leads": [
            {"id": item.lead_id, "_links": {"self": {"href": f"/api/v4/leads/{item.lead_id}"}}}
        ],
        "contacts": []
        if item.contact_id is None
        else [
            {
                "id": item.contact_id,
                "_links": {"self": {"href": f"/api/v4/contacts/{item.contact_id}"}},
            }
        ],
        "companies": []
        if item.company_id is None
        else [
            {
                "id": item.company_id,
                "_links": {"self": {"href": f"/api/v4/companies/{item.company_id}"}},
            }
        ],
    }


def unsorted(state: SandboxState, item: UnsortedItem) -> JSON:
    return {
        "uid": item.uid,
        "source_uid": item.source_uid,
        "source_name": item.source_name,
        "category": item.category,
        "pipeline_id": item.pipeline_id,
        "created_at": item.created_at,
        "metadata": item.metadata,
        "account_id": state.account_id,
        "_links": {"self": {"href": f"/api/v4/leads/unsorted/{item.uid}"}},
        "_embedded": unsorted_links(item),
    }


def webhook(state: SandboxState, item: Webhook) -> JSON:
    return {
        "id": item.id,
        "destination": item.destination,
        "created_at": item.created_at,
        "updated_at": item.updated_at,
        "account_id": state.account_id,
        "created_by": item.created_by,
        "sort": item.sort,
        "disabled": item.disabled,
        "settings": item.settings,
    }
