"""SPEC §11 over real HTTP against the sandbox: a lead is never refused for a cosmetic flaw.

Each soft case is sent to a gateway connected to the sandbox: it is answered 200, reaches amoCRM,
the answer and the delivery list a warning for the field, and the lead's note holds the value as
the caller typed it. Each fatal case is a 422 with the original gateway's texts and stores
nothing. The original README's two example bodies go through unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings

from amogate.app_state import state_of
from amogate.leads.reading import NOT_AN_OBJECT_BODY
from amogate.leads.schemas import (
    CONTACT_FIELD_REQUIRED,
    CONTACT_REQUIRED,
    LEAD_NAME_REQUIRED,
    LEAD_REQUIRED,
)
from amogate.settings import Settings
from amogate.storage import deliveries as store
from tests.fuzz.strategies import reachable_requests
from tests.leads.helpers import (
    URL,
    api_json,
    delivery,
    lead_fields,
    lead_notes,
    unsorted_items,
    wait_until_settled,
)
from tests.support.gateway import Harness, connected_gateway

JSON = dict[str, Any]
FAST: JSON = {"lead_sync_timeout": 5.0, "delivery_retry_base_seconds": 0.2}
LONG_NAME = "Buyurtma " + "juda uzun nom " * 25  # 359 characters

# The original README's request body and its cURL example, exactly as documented.
README_BODY: JSON = {
    "source": "website",
    "form_name": "Contact Form",
    "form_page": "https://mywebsite.com/contact",
    "referer": "https://google.com",
    "ip": "127.0.0.1",
    "pipeline_id": 123456,
    "lead": {
        "name": "Yangi mijoz",
        "price": 50000,
        "custom_fields": [{"field_id": 789, "value": "Qo'shimcha ma'lumot"}],
        "tags": ["website", "hot-lead"],
    },
    "contact": {"name": "Alisher Navoi", "phone": "+998901234567", "email": "alisher@example.com"},
    "utm": {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring_sale"},
    "comment": "Mijoz maxsulot haqida so'radi",
}
README_CURL_BODY: JSON = {
    "source": "website",
    "form_name": "Konsultatsiya form",
    "lead": {"name": "Yangi mijoz so'rovi", "price": 100000, "tags": ["website", "urgent"]},
    "contact": {"name": "Jasur Karimov", "phone": "+998909876543", "email": "jasur@example.uz"},
    "comment": "Mijoz tez orada javob kutmoqda",
}


def base() -> JSON:
    return {
        "form_name": "Aloqa formasi",
        "lead": {"name": "Yangi buyurtma"},
        "contact": {"name": "Dilnoza", "phone": "+998901112233"},
    }


Check = Callable[[Harness, JSON, JSON], Awaitable[None]]


@dataclass
class Soft:
    """A request with one flaw: the warning it must give and the text its note must hold."""

    change: Callable[[JSON, list[JSON]], None]
    field: str
    in_note: str
    check: Check | None = None


def lead_field(fields: list[JSON], kind: str) -> JSON:
    return next(f for f in fields if f["type"] == kind and not f.get("code"))


async def contact_of(h: Harness, data: JSON) -> JSON:
    contact: JSON = await api_json(h, f"/api/v4/contacts/{data['contact_id']}")
    return contact


async def form_of(h: Harness, data: JSON) -> JSON:
    return next(u for u in await unsorted_items(h) if u["uid"] == data["uid"])


async def phone_is_e164(h: Harness, data: JSON, lead: JSON) -> None:
    contact = await contact_of(h, data)
    [phone] = next(v for v in contact["custom_fields_values"] if v["field_code"] == "PHONE")[
        "values"
    ]
    assert phone["value"] == "+998901234567"


async def no_email(h: Harness, data: JSON, lead: JSON) -> None:
    contact = await contact_of(h, data)
    codes = [v["field_code"] for v in contact["custom_fields_values"] or []]
    assert "EMAIL" not in codes


async def first_ip_used(h: Harness, data: JSON, lead: JSON) -> None:
    assert (await form_of(h, data))["metadata"]["ip"] == "1.2.3.4"


async def no_ip(h: Harness, data: JSON, lead: JSON) -> None:
    assert "ip" not in (await form_of(h, data))["metadata"]


def price_is(expected: int) -> Check:
    async def check(h: Harness, data: JSON, lead: JSON) -> None:
        assert lead["price"] == expected

    return check


async def name_cut_to_255(h: Harness, data: JSON, lead: JSON) -> None:
    assert lead["name"] == LONG_NAME[:255].rstrip()


async def contact_named_12345(h: Harness, data: JSON, lead: JSON) -> None:
    assert (await contact_of(h, data))["name"] == "12345"


async def in_main_pipeline(h: Harness, data: JSON, lead: JSON) -> None:
    pipelines = (await api_json(h, "/api/v4/leads/pipelines"))["_embedded"]["pipelines"]
    assert lead["pipeline_id"] == next(p["id"] for p in pipelines if p["is_main"])


async def text_value_cut_to_256(h: Harness, data: JSON, lead: JSON) -> None:
    [value] = lead["custom_fields_values"]
    assert value["values"] == [{"value": "z" * 256}]


async def tags_split(h: Harness, data: JSON, lead: JSON) -> None:
    assert sorted(t["name"] for t in lead["_embedded"]["tags"]) == ["aksiya", "sayt"]


def put(path: str, value: Any) -> Callable[[JSON, list[JSON]], None]:
    def change(body: JSON, fields: list[JSON]) -> None:
        *parents, last = path.split(".")
        holder = body
        for key in parents:
            holder = holder.setdefault(key, {})
        holder[last] = value

    return change


def custom(entry: Callable[[list[JSON]], JSON]) -> Callable[[JSON, list[JSON]], None]:
    def change(body: JSON, fields: list[JSON]) -> None:
        body["lead"]["custom_fields"] = [entry(fields)]

    return change


SOFT: dict[str, Soft] = {
    "malformed email": Soft(
        put("contact.email", "ivan@mail"), "contact.email", "ivan@mail", no_email
    ),
    "numeric phone": Soft(
        put("contact.phone", 998901234567), "contact.phone", "998901234567", phone_is_e164
    ),
    "phone without digits": Soft(
        put("contact.phone", "qo'ng'iroq qiling"), "contact.phone", "qo'ng'iroq qiling"
    ),
    "number as contact name": Soft(
        put("contact.name", 12345), "contact.name", "12345", contact_named_12345
    ),
    "boolean as form name": Soft(put("form_name", True), "form_name", "form_name: true"),
    "number as comment": Soft(put("comment", 42), "comment", "comment: 42"),
    "ip from X-Forwarded-For": Soft(
        put("ip", "1.2.3.4, 10.0.0.1"), "ip", "1.2.3.4, 10.0.0.1", first_ip_used
    ),
    "ip as a list": Soft(
        put("ip", ["1.2.3.4", "10.0.0.1"]), "ip", '["1.2.3.4", "10.0.0.1"]', first_ip_used
    ),
    "ip garbage": Soft(put("ip", "localhost:8080"), "ip", "localhost:8080", no_ip),
    "price with spaces": Soft(put("lead.price", "50 000"), "lead.price", "50 000", price_is(50000)),
    "price with currency": Soft(
        put("lead.price", "1 500 000 so'm"), "lead.price", "1 500 000 so'm", price_is(1500000)
    ),
    "price with dollar sign": Soft(
        put("lead.price", "$1,500"), "lead.price", "$1,500", price_is(1500)
    ),
    "price not a number": Soft(
        put("lead.price", "kelishamiz"), "lead.price", "kelishamiz", price_is(0)
    ),
    "too long lead name": Soft(
        put("lead.name", LONG_NAME), "lead.name", LONG_NAME.strip(), name_cut_to_255
    ),
    "too long text field value": Soft(
        custom(lambda f: {"field_id": lead_field(f, "text")["id"], "value": "z" * 300}),
        "lead.custom_fields.0.value",
        "z" * 300,
        text_value_cut_to_256,
    ),
    "unknown field name": Soft(
        custom(lambda f: {"field_name": "Rangi", "value": "qizil"}), "lead.custom_fields.0", "qizil"
    ),
    "unknown field code": Soft(
        custom(lambda f: {"field_code": "COLOUR", "value": "ko'k"}), "lead.custom_fields.0", "ko'k"
    ),
    "unknown field id": Soft(
        custom(lambda f: {"field_id": 123, "value": "yashil"}), "lead.custom_fields.0", "yashil"
    ),
    "unknown option label": Soft(
        custom(lambda f: {"field_id": lead_field(f, "select")["id"], "enum": "Oltin"}),
        "lead.custom_fields.0.enum",
        "Oltin",
    ),
    "text in a numeric field (amoCRM refuses it)": Soft(
        custom(lambda f: {"field_name": "Miqdor", "value": "besh"}), "lead.custom_fields.0", "besh"
    ),
    "option id amoCRM no longer has": Soft(
        custom(lambda f: {"field_id": lead_field(f, "select")["id"], "enum_id": 1}),
        "lead.custom_fields.0",
        "lead.custom_fields.0: 1",
    ),
    "pipeline amoCRM does not have": Soft(
        put("pipeline_id", 424242), "pipeline_id", "424242", in_main_pipeline
    ),
    "pipeline id not a number": Soft(
        put("pipeline_id", "asosiy"), "pipeline_id", "asosiy", in_main_pipeline
    ),
    "tags as text": Soft(put("lead.tags", "sayt, aksiya"), "lead.tags", "sayt, aksiya", tags_split),
    "custom fields not a list": Soft(
        put("lead.custom_fields", {"Rangi": "qizil"}), "lead.custom_fields", '{"Rangi": "qizil"}'
    ),
    "utm not an object": Soft(put("utm", "utm_source=google"), "utm", "utm_source=google"),
    "unknown top-level key": Soft(put("agree", "on"), "agree", "agree: on"),
    # Beyond 64 bits: stored (JSON columns) and noted exactly, not as a float.
    "huge number in an unknown key": Soft(
        put("order_no", 10**30 + 7), "order_no", "order_no: 1000000000000000000000000000007"
    ),
    "unknown key in lead": Soft(put("lead.rang", "qizil"), "lead.rang", "lead.rang: qizil"),
    "unknown key in contact": Soft(
        put("contact.telegram", "@dilnoza"), "contact.telegram", "contact.telegram: @dilnoza"
    ),
}


async def post(h: Harness, body: Any, headers: dict[str, str]) -> tuple[int, JSON]:
    response = await h.gateway.post(URL, json=body, headers=headers)
    return response.status_code, response.json()


async def note_of(h: Harness, lead_id: int) -> str:
    return "\n".join(n["params"]["text"] for n in await lead_notes(h, lead_id))


@pytest.mark.parametrize("case", list(SOFT), ids=list(SOFT))
async def test_a_soft_flaw_is_delivered_with_a_warning_and_the_raw_value_in_the_note(
    case: str, settings: Settings, api_headers: dict[str, str]
) -> None:
    soft = SOFT[case]
    async with connected_gateway(settings, background=True, **FAST) as h:
        body = base()
        soft.change(body, await lead_fields(h))
        status, answer = await post(h, body, api_headers)
        assert status == 200, answer
        data = answer["data"]
        assert data["status"] == "delivered"
        assert soft.field in [w["field"] for w in data["warnings"]], data["warnings"]
        lead = await api_json(h, f"/api/v4/leads/{data['lead_id']}?with=contacts")
        assert lead["id"] == data["lead_id"]
        assert soft.in_note in await note_of(h, data["lead_id"])
        await wait_until_settled(h.gateway, [data["delivery_id"]], api_headers)
        record = await delivery(h, data["delivery_id"], api_headers)
        assert record["status"] == "delivered"
        assert record["warnings"] == data["warnings"]
        if soft.check is not None:
            await soft.check(h, data, lead)


FATAL: dict[str, tuple[Any, JSON]] = {
    "body not an object": ([base()], {"request": NOT_AN_OBJECT_BODY}),
    "empty body": ({}, {"lead": LEAD_REQUIRED, "contact": CONTACT_REQUIRED}),
    "empty lead": ({**base(), "lead": {}}, {"lead": LEAD_REQUIRED}),
    "lead not an object": ({**base(), "lead": "Yangi buyurtma"}, {"lead": LEAD_REQUIRED}),
    "blank lead name": ({**base(), "lead": {"name": "   "}}, {"lead.name": LEAD_NAME_REQUIRED}),
    "lead without name": ({**base(), "lead": {"price": 5}}, {"lead.name": LEAD_NAME_REQUIRED}),
    "empty contact": ({**base(), "contact": {}}, {"contact": CONTACT_REQUIRED}),
    "contact not an object": ({**base(), "contact": ["Dilnoza"]}, {"contact": CONTACT_REQUIRED}),
    "nothing to reach the person by": (
        {**base(), "contact": {"name": " ", "phone": "", "email": None, "izoh": "x"}},
        {"contact": CONTACT_FIELD_REQUIRED},
    ),
}


@pytest.mark.parametrize("case", list(FATAL), ids=list(FATAL))
async def test_a_fatal_mistake_is_a_422_with_the_original_text_and_stores_nothing(
    case: str, settings: Settings, api_headers: dict[str, str]
) -> None:
    body, details = FATAL[case]
    async with connected_gateway(settings, background=True, **FAST) as h:
        status, answer = await post(h, body, api_headers)
        assert status == 422
        assert answer == {"success": False, "error": "Validation failed", "details": details}
        async with state_of(h.app).running().database.read() as conn:
            assert await store.list_deliveries(conn) == []
        assert await unsorted_items(h) == []


@pytest.mark.parametrize(
    ("body", "warned"),
    [
        (README_BODY, ["pipeline_id", "lead.custom_fields.0"]),
        (README_CURL_BODY, []),
    ],
    ids=["request example", "curl example"],
)
async def test_the_original_readme_examples_arrive_in_amocrm(
    body: JSON, warned: list[str], settings: Settings, api_headers: dict[str, str]
) -> None:
    """As written in the original README: its ids (pipeline 123456, field 789) are not the
    sandbox's, so they are warnings; the lead arrives all the same."""
    async with connected_gateway(settings, background=True, **FAST) as h:
        status, answer = await post(h, body, api_headers)
        assert status == 200, answer
        assert answer["message"] == "Unsorted lead created successfully"
        data = answer["data"]
        assert sorted(w["field"] for w in data.get("warnings", [])) == sorted(warned)
        [item] = await unsorted_items(h)
        [listed] = data["_embedded"]["unsorted"]
        assert listed["uid"] == item["uid"] == data["uid"]
        assert listed["source_uid"] == item["source_uid"] == data["delivery_id"]
        assert listed["lead_id"] == item["_embedded"]["leads"][0]["id"] == data["lead_id"]
        assert listed["contact_id"] == item["_embedded"]["contacts"][0]["id"] == data["contact_id"]
        assert listed["_embedded"] == {
            "leads": [{"id": data["lead_id"]}],
            "contacts": [{"id": data["contact_id"]}],
        }
        lead = await api_json(h, f"/api/v4/leads/{data['lead_id']}")
        assert lead["name"] == body["lead"]["name"]
        assert lead["price"] == body["lead"]["price"]
        assert body["comment"] in await note_of(h, data["lead_id"])


async def test_a_trailing_slash_is_the_same_route_without_a_redirect(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, background=True, **FAST) as h:
        response = await h.gateway.post(URL + "/", json=README_CURL_BODY, headers=api_headers)
        assert response.status_code == 200, response.text
        assert response.json()["data"]["status"] == "delivered"
        for path in ("/health/", "/api/v1/info/pipelines/", "/api/v1/info/pipelines//"):
            answer = await h.gateway.get(path, headers=api_headers)
            assert answer.status_code == 200, (path, answer.status_code)
        missing = await h.gateway.get("/api/v1/nothing/", headers=api_headers)
        assert missing.status_code == 404
        assert missing.json()["error"] == "Endpoint not found: /api/v1/nothing"


async def test_a_queued_answer_carries_the_warnings_too(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    async with connected_gateway(settings, background=False, lead_sync_timeout=0) as h:
        body = base()
        body["contact"]["email"] = "ivan@mail"
        status, answer = await post(h, body, api_headers)
        assert status == 202
        assert answer["data"]["warnings"] == [
            {"field": "contact.email", "problem": "not a valid email address; kept in the note"}
        ]
        record = await delivery(h, answer["data"]["delivery_id"], api_headers)
        assert record["warnings"] == answer["data"]["warnings"]


PROPERTY_EXAMPLES = 150


def test_any_named_lead_with_a_way_to_reach_the_person_is_accepted_and_delivered(
    settings: Settings, api_headers: dict[str, str]
) -> None:
    """SPEC §11's property over real HTTP: never 4xx or 5xx, and every lead reaches amoCRM."""
    loop = asyncio.new_event_loop()
    stack = contextlib.AsyncExitStack()
    accepted: list[str] = []
    try:
        h = loop.run_until_complete(
            stack.enter_async_context(
                connected_gateway(
                    settings, background=True, lead_sync_timeout=0, delivery_retry_base_seconds=0.2
                )
            )
        )

        @hypothesis_settings(
            max_examples=PROPERTY_EXAMPLES,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        )
        @given(body=reachable_requests())
        def check(body: JSON) -> None:
            raw = json.dumps(body, ensure_ascii=False)  # NaN and infinities as JSON allows
            response = loop.run_until_complete(
                h.gateway.post(
                    URL,
                    content=raw.encode(),
                    headers={**api_headers, "Content-Type": "application/json"},
                )
            )
            assert response.status_code == 202, (response.status_code, response.text, raw)
            accepted.append(response.json()["data"]["delivery_id"])

        check()
        statuses = loop.run_until_complete(
            wait_until_settled(h.gateway, accepted, api_headers, within=120)
        )
        assert set(statuses.values()) == {"delivered"}, statuses
        print(f"\n{len(accepted)} generated leads accepted and delivered")
    finally:
        loop.run_until_complete(stack.aclose())
        loop.close()
