"""Account, users, pipelines and custom fields against amocrm-api.md §4.1–§4.3 and §2.3."""

from __future__ import annotations

from typing import Any

import httpx

from tests.sandbox.helpers import JSON

HAL = "application/hal+json"


async def all_pages(sandbox: httpx.AsyncClient, url: str, auth: dict[str, str]) -> list[JSON]:
    """Follow `_links.next` like amoCRM clients do, checking each page's envelope."""
    items: list[JSON] = []
    pages = 0
    next_url: str | None = url
    while next_url is not None:
        response = await sandbox.get(next_url, headers=auth)
        assert response.status_code == 200
        body = response.json()
        pages += 1
        assert body["_page"] == pages
        items += body["_embedded"]["custom_fields"]
        next_link: Any = body["_links"].get("next")
        next_url = None if next_link is None else next_link["href"]
        if next_url is None:
            assert body["_page_count"] == pages
    return items


async def test_account_has_the_top_level_fields(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await sandbox.get("/api/v4/account", headers=auth)

    assert response.status_code == 200
    assert response.headers["content-type"] == HAL
    body = response.json()
    for key in (
        "id",
        "name",
        "subdomain",
        "created_at",
        "current_user_id",
        "country",
        "currency",
        "currency_symbol",
        "customers_mode",
        "is_unsorted_on",
        "is_loss_reason_enabled",
        "is_helpbot_enabled",
        "is_technical_account",
        "contact_name_display_order",
    ):
        assert key in body
    assert body["subdomain"] == "sandbox"
    assert body["currency"] == "UZS"
    assert body["_links"] == {"self": {"href": "http://sandbox.test/api/v4/account"}}
    assert "_embedded" not in body  # without `with` only scalars come back
    assert "amojo_id" not in body


async def test_account_with_adds_the_requested_parts(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await sandbox.get(
        "/api/v4/account",
        params={"with": "amojo_id,datetime_settings,users_groups,task_types,version"},
        headers=auth,
    )

    body = response.json()
    assert isinstance(body["amojo_id"], str)
    assert isinstance(body["version"], int)
    assert body["_embedded"]["datetime_settings"]["timezone"] == "Asia/Tashkent"
    assert body["_embedded"]["users_groups"][0]["id"] == 0
    assert body["_embedded"]["task_types"][0]["code"] == "FOLLOW_UP"
    assert "amojo_rights" not in body["_embedded"]


async def test_users_list_the_account_users(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    body = (await sandbox.get("/api/v4/users", headers=auth)).json()

    assert body["_total_items"] == len(body["_embedded"]["users"]) >= 3


async def test_pipelines_carry_unsorted_regular_won_and_lost_statuses(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await sandbox.get("/api/v4/leads/pipelines", headers=auth)

    assert response.status_code == 200
    body = response.json()
    assert body["_total_items"] == 2
    assert body["_links"]["self"]["href"] == "http://sandbox.test/api/v4/leads/pipelines"
    pipelines = body["_embedded"]["pipelines"]
    assert [p["is_main"] for p in pipelines] == [True, False]
    for pipeline in pipelines:
        assert {"id", "name", "sort", "is_main", "is_unsorted_on", "is_archive", "account_id"} <= (
            set(pipeline)
        )
        statuses = pipeline["_embedded"]["statuses"]
        assert statuses[0]["type"] == 1
        assert statuses[0]["is_editable"] is False
        assert [s["id"] for s in statuses[-2:]] == [142, 143]
        assert any(s["type"] == 0 and s["is_editable"] for s in statuses)
        assert all(s["pipeline_id"] == pipeline["id"] for s in statuses)
        assert all("_links" in s and "color" in s for s in statuses)


async def test_one_pipeline_by_id(sandbox: httpx.AsyncClient, auth: dict[str, str]) -> None:
    listed = (await sandbox.get("/api/v4/leads/pipelines", headers=auth)).json()
    second = listed["_embedded"]["pipelines"][1]

    response = await sandbox.get(f"/api/v4/leads/pipelines/{second['id']}", headers=auth)

    assert response.status_code == 200
    assert response.json() == second


async def test_unknown_pipeline_is_404_problem(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await sandbox.get("/api/v4/leads/pipelines/999", headers=auth)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["title"] == "Not Found"
    assert body["type"] == "https://httpstatus.es/404"
    assert body["status"] == 404


async def test_lead_fields_paginate_with_next_only_while_pages_remain(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    fields = await all_pages(sandbox, "/api/v4/leads/custom_fields", auth)

    first = (await sandbox.get("/api/v4/leads/custom_fields", headers=auth)).json()
    assert len(first["_embedded"]["custom_fields"]) == 50  # default page size
    assert first["_links"]["next"]["href"] == (
        "http://sandbox.test/api/v4/leads/custom_fields?page=2&limit=50"
    )
    assert first["_total_items"] == len(fields) >= 60
    assert len({f["id"] for f in fields}) == len(fields)


async def test_limit_is_capped_at_250_and_one_page_has_no_next(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    body = (
        await sandbox.get("/api/v4/leads/custom_fields", params={"limit": 1000}, headers=auth)
    ).json()

    assert body["_page_count"] == 1
    assert "next" not in body["_links"]
    assert body["_links"]["self"]["href"].endswith("page=1&limit=250")
    assert len(body["_embedded"]["custom_fields"]) == body["_total_items"]


async def test_page_past_the_end_is_204(sandbox: httpx.AsyncClient, auth: dict[str, str]) -> None:
    response = await sandbox.get(
        "/api/v4/leads/custom_fields", params={"page": 9, "limit": 50}, headers=auth
    )

    assert response.status_code == 204
    assert response.content == b""


async def test_second_page_links_back_with_prev(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    body = (
        await sandbox.get("/api/v4/leads/custom_fields", params={"page": 2}, headers=auth)
    ).json()

    assert body["_links"]["prev"]["href"].endswith("page=1&limit=50")
    assert "next" not in body["_links"]


async def test_lead_fields_include_tracking_fields_and_mahsulot_turi(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    fields = await all_pages(sandbox, "/api/v4/leads/custom_fields?limit=250", auth)

    tracking = {f["code"] for f in fields if f["type"] == "tracking_data"}
    assert {
        "UTM_SOURCE",
        "UTM_MEDIUM",
        "UTM_CAMPAIGN",
        "UTM_CONTENT",
        "UTM_TERM",
        "REFERRER",
    } <= tracking
    mahsulot = next(f for f in fields if f["name"] == "Mahsulot turi")
    assert mahsulot["type"] == "select"
    assert [e["value"] for e in mahsulot["enums"]] == ["Premium", "Standart"]
    types = {f["type"] for f in fields}
    assert {
        "text",
        "numeric",
        "select",
        "multiselect",
        "checkbox",
        "date",
        "url",
        "textarea",
    } <= types
    for field in fields:
        assert field["entity_type"] == "leads"
        assert field["_links"]["self"]["href"].endswith(f"/custom_fields/{field['id']}")


async def test_filter_by_type(sandbox: httpx.AsyncClient, auth: dict[str, str]) -> None:
    body = (
        await sandbox.get(
            "/api/v4/leads/custom_fields",
            params={"filter[type][]": "tracking_data", "limit": 250},
            headers=auth,
        )
    ).json()

    assert {f["type"] for f in body["_embedded"]["custom_fields"]} == {"tracking_data"}


async def test_contact_fields_have_the_standard_phone_and_email_enums(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    fields = await all_pages(sandbox, "/api/v4/contacts/custom_fields", auth)

    by_code = {f["code"]: f for f in fields if f["code"]}
    assert [e["value"] for e in by_code["PHONE"]["enums"]] == [
        "WORK",
        "WORKDD",
        "MOB",
        "FAX",
        "HOME",
        "OTHER",
    ]
    assert [e["value"] for e in by_code["EMAIL"]["enums"]] == ["WORK", "PRIV", "OTHER"]
    assert by_code["PHONE"]["type"] == by_code["EMAIL"]["type"] == "multitext"
    assert by_code["PHONE"]["is_predefined"] is True
    assert "POSITION" in by_code


async def test_one_field_by_id_and_unknown_is_204(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    listed = (await sandbox.get("/api/v4/leads/custom_fields", headers=auth)).json()
    first = listed["_embedded"]["custom_fields"][0]

    found = await sandbox.get(f"/api/v4/leads/custom_fields/{first['id']}", headers=auth)
    missing = await sandbox.get("/api/v4/leads/custom_fields/1", headers=auth)

    assert found.json() == first
    assert missing.status_code == 204


async def test_created_field_joins_the_list(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await sandbox.post(
        "/api/v4/leads/custom_fields",
        json=[
            {
                "name": "Yetkazish turi",
                "type": "select",
                "enums": [{"value": "Kuryer"}, {"value": "Pochta"}],
                "request_id": "f1",
            }
        ],
        headers=auth,
    )

    assert response.status_code == 200
    created = response.json()["_embedded"]["custom_fields"][0]
    assert created["request_id"] == "f1"
    assert [e["value"] for e in created["enums"]] == ["Kuryer", "Pochta"]
    fields = await all_pages(sandbox, "/api/v4/leads/custom_fields", auth)
    assert created["id"] in {f["id"] for f in fields}


async def test_creating_a_field_checks_name_and_type(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await sandbox.post(
        "/api/v4/contacts/custom_fields", json=[{"type": "nonsense"}], headers=auth
    )

    assert response.status_code == 400
    errors = response.json()["validation-errors"][0]["errors"]
    assert {(e["code"], e["path"]) for e in errors} == {
        ("FieldMissing", "name"),
        ("NotSupportedChoice", "type"),
    }


async def test_a_field_created_api_only_says_so_and_others_do_not(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await sandbox.post(
        "/api/v4/leads/custom_fields",
        json=[
            {"name": "Hidden id", "type": "text", "code": "HIDDEN_ID", "is_api_only": True},
            {"name": "Visible note", "type": "text"},
        ],
        headers=auth,
    )

    assert response.status_code == 200
    hidden, visible = response.json()["_embedded"]["custom_fields"]
    assert (hidden["code"], hidden["is_api_only"]) == ("HIDDEN_ID", True)
    assert visible["is_api_only"] is False
    fields = await all_pages(sandbox, "/api/v4/leads/custom_fields", auth)
    assert [f["is_api_only"] for f in fields if f["id"] == hidden["id"]] == [True]


async def test_is_api_only_must_be_a_boolean(
    sandbox: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await sandbox.post(
        "/api/v4/leads/custom_fields",
        json=[{"name": "Hidden id", "type": "text", "is_api_only": "yes"}],
        headers=auth,
    )

    assert response.status_code == 400
    errors = response.json()["validation-errors"][0]["errors"]
    assert [(e["code"], e["path"]) for e in errors] == [("InvalidType", "is_api_only")]
