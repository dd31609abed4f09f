"""`GET /api/v4/account`, `GET /api/v4/users`, pipelines and custom fields (amocrm-api.md §4.1–4.3).

Account: top-level scalars and `_links` always; `with=` adds the listed parts (`amojo_id`,
`uuid`, `version`, `is_api_filter_enabled` as scalars, the rest under `_embedded`), so the
timezone is at `_embedded.datetime_settings.timezone`, as in amoCRM. An unknown pipeline id →
404 problem JSON. Custom-field lists are paginated (default 50, max 250) and filter by
`filter[type][]`; `POST .../custom_fields` creates fields (`is_api_only: true` marks a field
only the API writes and reads, hidden from the web interface).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from amogate.amocrm.sandbox.responses import hal, no_content, problem
from amogate.amocrm.sandbox.routes.common import listing, path_id, state_of, with_parts
from amogate.amocrm.sandbox.seed import ACCOUNT_CREATED_AT, ADMIN_USER_ID, make_field
from amogate.amocrm.sandbox.validation import Validation, read_batch, request_id_of

JSON = dict[str, Any]
FIELD_TYPES = frozenset(
    {
        "text",
        "numeric",
        "checkbox",
        "select",
        "multiselect",
        "multitext",
        "date",
        "url",
        "textarea",
        "radiobutton",
        "streetaddress",
        "smart_address",
        "birthday",
        "legal_entity",
        "date_time",
        "price",
        "category",
        "items",
        "tracking_data",
        "linked_entity",
        "chained_list",
        "monetary",
        "file",
    }
)


async def account(request: Request) -> Response:
    state = state_of(request)
    parts = with_parts(request)
    body: JSON = {
        "id": state.account_id,
        "name": f"{state.config.subdomain.capitalize()} savdo",
        "subdomain": state.config.subdomain,
        "created_at": ACCOUNT_CREATED_AT,
        "created_by": 0,
        "updated_at": ACCOUNT_CREATED_AT,
        "updated_by": 0,
        "current_user_id": ADMIN_USER_ID,
        "country": "UZ",
        "currency": "UZS",
        "currency_symbol": "so'm",
        "customers_mode": "disabled",
        "is_unsorted_on": True,
        "is_loss_reason_enabled": True,
        "is_helpbot_enabled": False,
        "is_technical_account": False,
        "contact_name_display_order": 1,
        "mobile_feature_version": 0,
    }
    scalars = {
        "amojo_id": "6b0b55c9-5a5f-4c1e-9c36-0f6fbd3a1a11",
        "uuid": "0e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b",
        "version": 11,
        "is_api_filter_enabled": False,
        "drive_url": f"{state.config.base_url}/drive",
    }
    embedded_parts: JSON = {
        "amojo_rights": {"can_direct": True, "can_create_groups": True},
        "users_groups": [{"id": 0, "name": "Отдел продаж", "uuid": None}],
        "task_types": [
            {"id": 1, "name": "Связаться", "color": None, "icon_id": None, "code": "FOLLOW_UP"},
            {"id": 2, "name": "Встреча", "color": None, "icon_id": None, "code": "MEETING"},
        ],
        "datetime_settings": {
            "date_pattern": "d.m.Y H:i",
            "short_date_pattern": "d.m.Y",
            "short_time_pattern": "H:i",
            "date_format": "d.m.Y",
            "time_format": "H:i:s",
            "timezone": "Asia/Tashkent",
            "timezone_offset": "+05:00",
        },
        "invoices_settings": {"lang": "ru", "invoices_catalog_id": None},
    }
    body.update({k: v for k, v in scalars.items() if k in parts})
    body["_links"] = {"self": {"href": f"{state.config.base_url}/api/v4/account"}}
    embedded = {k: v for k, v in embedded_parts.items() if k in parts}
    if embedded:
        body["_embedded"] = embedded
    return hal(body)


async def users(request: Request) -> Response:
    state = state_of(request)
    rows = [
        {**u, "_links": _self(state.config.base_url, f"users/{u['id']}")} for u in state.seed.users
    ]
    return listing(request, rows, "users", totals=True)


async def pipelines(request: Request) -> Response:
    state = state_of(request)
    rows = state.seed.pipelines
    return hal(
        {
            "_total_items": len(rows),
            "_links": _self(state.config.base_url, "leads/pipelines"),
            "_embedded": {"pipelines": rows},
        }
    )


async def pipeline(request: Request) -> Response:
    state = state_of(request)
    raw = str(request.path_params["id"])
    found = state.pipeline(int(raw)) if raw.isdigit() else None
    if found is None:
        return problem(404, "Pipeline not found")
    return hal(found)


async def statuses(request: Request) -> Response:
    state = state_of(request)
    found = state.pipeline(path_id(request))
    if found is None:
        return problem(404, "Pipeline not found")
    rows = found["_embedded"]["statuses"]
    return hal(
        {
            "_total_items": len(rows),
            "_links": {"self": {"href": f"{found['_links']['self']['href']}/statuses"}},
            "_embedded": {"statuses": rows},
        }
    )


async def list_fields(request: Request) -> Response:
    state = state_of(request)
    entity_type = _entity(request)
    wanted = set(request.query_params.getlist("filter[type][]")) | set(
        request.query_params.getlist("filter[type]")
    )
    rows = [f for f in state.custom_fields[entity_type] if not wanted or f["type"] in wanted]
    if request.query_params.get("order[sort]") == "desc":
        rows = sorted(rows, key=lambda f: f["sort"], reverse=True)
    return listing(request, rows, "custom_fields", totals=True)


async def get_field(request: Request) -> Response:
    state = state_of(request)
    found = state.field_by_id(_entity(request), path_id(request))
    return no_content() if found is None else hal(found)


async def create_fields(request: Request) -> Response:
    state = state_of(request)
    entity_type = _entity(request)
    items = await read_batch(request)
    validation = Validation()
    for index, item in enumerate(items):
        errors = validation.item(request_id_of(item, index))
        if not isinstance(item, dict):
            errors.invalid_type("", "array")
            continue
        if not isinstance(item.get("name"), str) or not item["name"].strip():
            errors.missing("name")
        if item.get("type") is None:
            errors.missing("type")
        elif item["type"] not in FIELD_TYPES:
            errors.bad_choice("type")
        enums = item.get("enums")
        if enums is not None and (
            not isinstance(enums, list)
            or not all(isinstance(e, dict) and e.get("value") for e in enums)
        ):
            errors.invalid_type("enums", "array")
        if not isinstance(item.get("is_api_only", False), bool):
            errors.invalid_type("is_api_only", "bool")
        code = item.get("code")
        if code is not None and state.field_by_code(entity_type, str(code)) is not None:
            errors.add("NotSupportedChoice", "code", "This code is already used.")
    validation.raise_if_failed()
    created = []
    for index, item in enumerate(items):
        field = make_field(
            state.config.base_url,
            state.seed,
            entity_type,
            state.next_id("field"),
            item["name"],
            item["type"],
            item.get("code"),
            [str(e["value"]) for e in item.get("enums") or []],
            sort=int(item.get("sort") or 500),
        )
        field["is_api_only"] = item.get("is_api_only") is True
        state.custom_fields[entity_type].append(field)
        created.append({**field, "request_id": request_id_of(item, index)})
    return hal({"_total_items": len(created), "_embedded": {"custom_fields": created}})


def _entity(request: Request) -> str:
    return "leads" if request.url.path.startswith("/api/v4/leads/") else "contacts"


def _self(base_url: str, path: str) -> JSON:
    return {"self": {"href": f"{base_url}/api/v4/{path}"}}


ROUTES = [
    Route("/api/v4/account", account, methods=["GET"]),
    Route("/api/v4/users", users, methods=["GET"]),
    Route("/api/v4/leads/pipelines", pipelines, methods=["GET"]),
    Route("/api/v4/leads/pipelines/{id}", pipeline, methods=["GET"]),
    Route("/api/v4/leads/pipelines/{id}/statuses", statuses, methods=["GET"]),
    Route("/api/v4/leads/custom_fields", list_fields, methods=["GET"]),
    Route("/api/v4/leads/custom_fields", create_fields, methods=["POST"]),
    Route("/api/v4/leads/custom_fields/{id}", get_field, methods=["GET"]),
    Route("/api/v4/contacts/custom_fields", list_fields, methods=["GET"]),
    Route("/api/v4/contacts/custom_fields", create_fields, methods=["POST"]),
    Route("/api/v4/contacts/custom_fields/{id}", get_field, methods=["GET"]),
]
