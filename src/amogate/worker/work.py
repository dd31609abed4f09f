"""`Work`: one claimed delivery as it goes through a pass of the worker."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from amogate.contacts.resolve import ContactChoice
from amogate.leads import mapping
from amogate.storage import deliveries as store


@dataclass
class Work:
    delivery: store.Delivery
    built: mapping.FormItem | None = None
    lead_id: int | None = None
    resent: bool = False  # sent again without refused values: a second refusal fails it
    payload: dict[str, Any] = field(default_factory=dict)
    warnings: list[dict[str, str]] = field(default_factory=list)
    contact: ContactChoice | None = None  # which contact the lead links (contacts.resolve)
    contact_id: int | None = None  # the contact amoCRM linked the created lead to

    def __post_init__(self) -> None:
        self.payload = self.delivery.payload
        self.warnings = list(self.delivery.warnings)

    def created_record(self) -> tuple[dict[str, Any], list[dict[str, str]]] | None:
        """Payload and warnings with what building the form set aside (None: nothing was)."""
        remarks = self.built.remarks if self.built is not None else []
        if not remarks:
            return None
        return mapping.add_remarks(self.payload, remarks), merge_warnings(self.warnings, remarks)

    @property
    def contact_matched(self) -> bool:
        """Whether the lead was linked to a contact that existed before it."""
        return self.contact is not None and self.contact.matched

    def created(self, lead_id: int | None, contact_id: int | None = None) -> None:
        """amoCRM created the lead: its id, its contact's, and the remarks now part of the
        stored payload."""
        self.lead_id = lead_id
        self.contact_id = contact_id
        record = self.created_record()
        if record is not None:
            self.payload, self.warnings = record


def merge_warnings(
    warnings: list[dict[str, str]], remarks: Sequence[Mapping[str, Any]]
) -> list[dict[str, str]]:
    merged = list(warnings)
    seen = {(w["field"], w["problem"]) for w in merged}
    for item in remarks:
        key = (str(item["field"]), str(item["problem"]))
        if key not in seen:
            seen.add(key)
            merged.append({"field": key[0], "problem": key[1]})
    return merged


def elapsed_ms(t0: float) -> int:
    """Milliseconds since `t0` (a `time.perf_counter()` reading)."""
    return int((time.perf_counter() - t0) * 1000)
