"""Stored CRM entities. Routes render them into amoCRM's read shapes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]


@dataclass
class Lead:
    id: int
    name: str
    price: int
    status_id: int
    pipeline_id: int
    responsible_user_id: int
    created_by: int
    created_at: int
    updated_at: int
    custom_fields_values: list[JSON] | None = None
    tag_ids: list[int] = field(default_factory=list)
    contact_ids: list[int] = field(default_factory=list)
    company_ids: list[int] = field(default_factory=list)
    closed_at: int | None = None
    loss_reason_id: int | None = None
    source: JSON | None = None
    is_deleted: bool = False


@dataclass
class Contact:
    id: int
    name: str
    first_name: str
    last_name: str
    responsible_user_id: int
    created_by: int
    created_at: int
    updated_at: int
    custom_fields_values: list[JSON] | None = None
    tag_ids: list[int] = field(default_factory=list)
    company_ids: list[int] = field(default_factory=list)
    # Contacts that came with an unsorted item stay out of lists until it is accepted.
    is_unsorted: bool = False
    is_deleted: bool = False


@dataclass
class Company:
    id: int
    name: str
    responsible_user_id: int
    created_by: int
    created_at: int
    updated_at: int
    custom_fields_values: list[JSON] | None = None


@dataclass
class Note:
    id: int
    entity_type: str
    entity_id: int
    note_type: str
    params: JSON
    created_by: int
    responsible_user_id: int
    created_at: int
    updated_at: int


@dataclass
class UnsortedItem:
    uid: str
    source_uid: str
    source_name: str
    category: str
    pipeline_id: int
    created_at: int
    metadata: JSON
    lead_id: int
    contact_id: int | None
    company_id: int | None
    status: str = "new"  # new | accepted | declined


@dataclass
class Webhook:
    id: int
    destination: str
    settings: list[str]
    sort: int
    created_by: int
    created_at: int
    updated_at: int
    disabled: bool = False


@dataclass
class Tag:
    id: int
    name: str
    color: str | None = None

    def as_api(self) -> JSON:
        return {"id": self.id, "name": self.name, "color": self.color}
