"""A form submission as a lead request — the same request `POST /api/v1/leads/unsorted` takes.

The recognised fields fill the contact and the lead; the form's settings add its pipeline and
tags; the request's page, referer and address become the form details. The result is read by
`amogate.leads.reading` like any other lead, so a form lead follows the intake's rules: only
"nothing to reach the person by" is refused, every other flaw becomes a warning and the value
goes to the note. Fields nobody recognised are added to the note as they were typed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from amogate.forms.recognize import CLICK_IDS, Recognized
from amogate.leads.reading import parse_lead_request
from amogate.leads.schemas import MAX_UTM, LeadRequest, Remark

FORM_FIELD = "a form field; kept in the note"
FILE_NOT_KEPT = "a file; amogate does not keep files, only its name is in the note"
SOURCE = "form"


@dataclass(frozen=True)
class FormSettings:
    """What a form adds to each of its leads."""

    name: str
    pipeline_id: int | None = None
    tags: Sequence[str] = ()
    mode: str | None = None  # "lead": the form's leads go straight into a pipeline stage


@dataclass(frozen=True)
class Visit:
    """Where the submission came from (none of it required)."""

    ip: str | None = None
    page: str | None = None  # the page the form is on (the Referer a browser sends)
    origin: str | None = None


def lead_request(found: Recognized, form: FormSettings, visit: Visit) -> dict[str, Any]:
    """The lead request body (the JSON shape of `/api/v1/leads/unsorted`)."""
    contact: dict[str, Any] = {}
    if found.names:
        contact["name"] = found.names[0]
    if found.first_name:
        contact["first_name"] = found.first_name
    if found.last_name:
        contact["last_name"] = found.last_name
    if found.phones:
        contact["phone"] = found.phones[0]
        if len(found.phones) > 1:
            contact["phones"] = found.phones[1:]
    if found.emails:
        contact["email"] = found.emails[0]
        if len(found.emails) > 1:
            contact["emails"] = found.emails[1:]
    lead: dict[str, Any] = {"name": found.lead_name or _lead_name(form.name, found)}
    if found.lead_price:
        lead["price"] = found.lead_price
    if form.tags:
        lead["tags"] = list(form.tags)
    custom = [{"field_code": code, "value": v} for code, v in found.tracking.items()]
    custom += [_custom_field(ref, value) for ref, value in found.custom_fields]
    if custom:
        lead["custom_fields"] = custom
    body: dict[str, Any] = {
        "source": SOURCE,
        "form_name": form.name,
        "lead": lead,
        "contact": contact,
    }
    if form.pipeline_id:
        body["pipeline_id"] = form.pipeline_id
    if form.mode:
        body["mode"] = form.mode
    page = visit.page or visit.origin
    if page:
        body["form_page"] = page
    if visit.page:
        body["referer"] = visit.page
    if visit.ip:
        body["ip"] = visit.ip
    if found.utm:
        body["utm"] = dict(list(found.utm.items())[:MAX_UTM])
    if found.comments:
        body["comment"] = "\n\n".join(found.comments)
    return body


def read_submission(
    found: Recognized,
    form: FormSettings,
    visit: Visit,
    *,
    files: Sequence[tuple[str, str]] = (),
) -> LeadRequest:
    """The submission read by the lead intake's rules (raises its `ValidationFailed` only when
    nothing reaches the person), with the unrecognised fields and file names for the note."""
    lead = parse_lead_request(lead_request(found, form, visit))
    for name, value in _grouped(found.other):
        lead.remarks.append(Remark(field=name, problem=FORM_FIELD, value=value, extra=True))
    for name, filename in files:
        lead.remarks.append(Remark(field=name, problem=FILE_NOT_KEPT, value=filename, extra=True))
    return lead


def _lead_name(form_name: str, found: Recognized) -> str:
    who = next((v for v in (*found.names, found.first_name, *found.phones, *found.emails) if v), "")
    return f"{form_name}: {who}" if who else form_name


def _custom_field(reference: str, value: str) -> dict[str, Any]:
    """`field:UTM_SOURCE` names a field by its code (amoCRM's codes are capitals with
    underscores, or a tracking code such as GCLID); anything else (`field:Shahar`, `field:INN`)
    by its name."""
    is_code = _CODE.fullmatch(reference) is not None and (
        "_" in reference or reference in CLICK_IDS.values()
    )
    return {"field_code" if is_code else "field_name": reference, "value": value}


_CODE = re.compile(r"[A-Z][A-Z0-9_]*")


def _grouped(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Repeated fields (checkbox groups) as one line: `services: a, b`."""
    merged: dict[str, list[str]] = {}
    for name, value in pairs:
        merged.setdefault(name, []).append(value)
    return [(name, ", ".join(values)) for name, values in merged.items()]
