"""The request -> amoCRM shapes of amocrm-api.md §4.4, §4.5, §4.8, §4.9."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amogate.leads.mapping import (
    AccountFields,
    FormItem,
    form_id,
    form_item,
    lead_note,
    stored_payload,
    uses_names,
)
from amogate.leads.reading import parse_lead_request
from amogate.leads.refusals import locate
from tests.leads.helpers import FIELDS

JSON = dict[str, Any]

README_EXAMPLE: JSON = {
    "source": "website",
    "form_name": "Contact Form",
    "form_page": "https://site/contact",
    "referer": "https://google.com",
    "ip": "127.0.0.1",
    "pipeline_id": 123456,
    "lead": {
        "name": "Yangi mijoz",
        "price": 50000,
        "custom_fields": [
            {"field_id": 789, "value": "text"},
            {"field_id": 790, "enum_id": 1},
            {"field_id": 791, "enum_ids": [11, 12]},
        ],
        "tags": ["website", {"name": "hot"}, {"id": 42}],
    },
    "contact": {"name": "Alisher Navoi", "phone": "+998901234567", "email": "alisher@example.com"},
    "utm": {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring_sale"},
    "comment": "Mijoz maxsulot haqida so'radi",
}


def payload_of(body: JSON, region: str = "UZ") -> JSON:
    return stored_payload(parse_lead_request(body), region)


def built_of(body: JSON, fields: AccountFields = FIELDS) -> FormItem:
    return form_item(payload_of(body), fields, delivery_id="d" * 32, created_at=1_700_000_000)


def item_of(body: JSON, fields: AccountFields = FIELDS) -> JSON:
    return built_of(body, fields).item


def test_readme_example_becomes_one_unsorted_form_item() -> None:
    item = item_of(README_EXAMPLE)
    assert item["request_id"] == item["source_uid"] == "d" * 32
    assert item["source_name"] == "website"
    assert item["pipeline_id"] == 123456
    assert item["created_at"] == 1_700_000_000
    assert item["metadata"] == {
        "form_id": "contact_form",
        "form_name": "Contact Form",
        "form_page": "https://site/contact",
        "form_sent_at": 1_700_000_000,
        "ip": "127.0.0.1",
        "referer": "https://google.com",
    }
    [lead] = item["_embedded"]["leads"]
    assert lead["name"] == "Yangi mijoz"
    assert lead["price"] == 50000
    assert lead["_embedded"]["tags"] == [{"name": "website"}, {"name": "hot"}, {"id": 42}]
    assert lead["custom_fields_values"] == [
        {"field_id": 789, "values": [{"value": "text"}]},
        {"field_id": 790, "values": [{"enum_id": 1}]},
        {"field_id": 791, "values": [{"enum_id": 11}, {"enum_id": 12}]},
        {"field_code": "UTM_SOURCE", "values": [{"value": "google"}]},
        {"field_code": "UTM_MEDIUM", "values": [{"value": "cpc"}]},
        {"field_code": "UTM_CAMPAIGN", "values": [{"value": "spring_sale"}]},
    ]
    [contact] = item["_embedded"]["contacts"]
    assert contact == {
        "name": "Alisher Navoi",
        "custom_fields_values": [
            {"field_code": "PHONE", "values": [{"value": "+998901234567", "enum_code": "WORK"}]},
            {
                "field_code": "EMAIL",
                "values": [{"value": "alisher@example.com", "enum_code": "WORK"}],
            },
        ],
    }


def test_utm_codes_the_account_lacks_are_dropped_from_tracking_fields() -> None:
    body = {**README_EXAMPLE, "utm": {"utm_source": "google", "utm_term": "crm", "gclid": "x"}}
    lead = item_of(body)["_embedded"]["leads"][0]
    codes = [v.get("field_code") for v in lead["custom_fields_values"]]
    assert codes == [None, None, None, "UTM_SOURCE"]


def test_fields_and_options_are_found_by_code_name_and_label_ignoring_case() -> None:
    body = {
        "lead": {
            "name": "L",
            "custom_fields": [
                {"field_name": "company NAME", "value": "ACME"},
                {"field_name": "Product", "enum": "premium"},
                {"field_id": 791, "enums": ["Courses", "SERVICE"]},
                {"field_code": "utm_source", "value": "direct"},
            ],
        },
        "contact": {"name": "C", "custom_fields": [{"field_name": "telegram", "value": "@c"}]},
    }
    item = item_of(body)
    assert item["_embedded"]["leads"][0]["custom_fields_values"] == [
        {"field_id": 789, "values": [{"value": "ACME"}]},
        {"field_id": 790, "values": [{"enum_id": 1}]},
        {"field_id": 791, "values": [{"enum_id": 11}, {"enum_id": 12}]},
        {"field_id": 801, "values": [{"value": "direct"}]},
    ]
    assert item["_embedded"]["contacts"][0]["custom_fields_values"] == [
        {"field_id": 903, "values": [{"value": "@c"}]}
    ]


def test_unknown_fields_and_labels_are_left_out_with_a_remark_by_our_dotted_path() -> None:
    body = {
        "lead": {
            "name": "L",
            "custom_fields": [
                {"field_name": "Colour", "value": "red"},
                {"field_name": "Product", "enum": "Gold"},
                {"field_id": 999, "value": 1},
                {"field_id": 789, "value": "kept"},
            ],
        },
        "contact": {"name": "C", "custom_fields": [{"field_code": "NOPE", "value": "x"}]},
    }
    built = built_of(body)
    assert [(r["field"], r["problem"], r["value"]) for r in built.remarks] == [
        (
            "lead.custom_fields.0",
            "amoCRM has no field field_name 'Colour'; kept in the note",
            "red",
        ),
        (
            "lead.custom_fields.1.enum",
            "field 'Product' has no option 'Gold'; kept in the note",
            "Gold",
        ),
        ("lead.custom_fields.2", "amoCRM has no field field_id 999; kept in the note", 1),
        ("contact.custom_fields.0", "amoCRM has no field field_code 'NOPE'; kept in the note", "x"),
    ]
    [lead] = built.item["_embedded"]["leads"]
    assert lead["custom_fields_values"] == [{"field_id": 789, "values": [{"value": "kept"}]}]
    assert "custom_fields_values" not in built.item["_embedded"]["contacts"][0]
    assert built.origins["_embedded.leads.0.custom_fields_values.0"] == ("lead", "custom_fields", 3)


def test_a_text_longer_than_its_field_takes_is_cut_and_kept_whole_in_the_note() -> None:
    long_text = "x" * 300
    body = {"lead": {"name": "L", "custom_fields": [{"field_id": 789, "value": long_text}]}}
    built = built_of({**body, "contact": {"name": "C"}})
    [value] = built.item["_embedded"]["leads"][0]["custom_fields_values"]
    assert value["values"] == [{"value": "x" * 256}]
    [cut] = built.remarks
    assert (cut["field"], cut["value"]) == ("lead.custom_fields.0.value", long_text)
    payload = {**payload_of({**body, "contact": {"name": "C"}}), "remarks": built.remarks}
    note = lead_note(payload, 1, "r")
    assert note is not None
    assert long_text in note["params"]["text"]


def test_phones_are_normalised_and_kept_once_with_their_kind() -> None:
    body = {
        "lead": {"name": "L"},
        "contact": {
            "phone": "90 123-45-67",
            "phones": ["+998901234567", {"value": "(93) 111 22 33", "type": "MOB"}, "12ab"],
            "emails": [{"value": "A@Example.com", "type": "PRIV"}],
        },
    }
    contact = item_of(body)["_embedded"]["contacts"][0]
    assert contact["name"] == "+998901234567"
    assert contact["custom_fields_values"] == [
        {
            "field_code": "PHONE",
            "values": [
                {"value": "+998901234567", "enum_code": "WORK"},
                {"value": "+998931112233", "enum_code": "MOB"},
                {"value": "12ab", "enum_code": "WORK"},
            ],
        },
        {"field_code": "EMAIL", "values": [{"value": "A@example.com", "enum_code": "PRIV"}]},
    ]


def test_status_responsible_and_visitor_are_passed_on() -> None:
    body = {
        "visitor_uid": "v-1",
        "lead": {"name": "L", "status_id": 5, "responsible_user_id": 77},
        "contact": {"name": "C"},
    }
    item = item_of(body)
    lead = item["_embedded"]["leads"][0]
    assert (lead["status_id"], lead["responsible_user_id"], lead["visitor_uid"]) == (5, 77, "v-1")
    assert item["metadata"]["visitor_uid"] == "v-1"
    assert item["_embedded"]["contacts"][0]["responsible_user_id"] == 77
    assert item["source_name"] == "amogate"
    assert item["metadata"]["form_name"] == "Website form"


def test_the_note_holds_the_comment_every_utm_pair_and_the_form_details() -> None:
    body = {**README_EXAMPLE, "utm": {**README_EXAMPLE["utm"], "gclid": "abc"}}
    note = lead_note(payload_of(body), 3478621, "r1")
    assert note is not None
    assert (note["entity_id"], note["note_type"], note["request_id"]) == (3478621, "common", "r1")
    text = note["params"]["text"]
    for expected in (
        "Mijoz maxsulot haqida so'radi",
        "utm_source: google",
        "utm_medium: cpc",
        "utm_campaign: spring_sale",
        "gclid: abc",
        "Page: https://site/contact",
        "Referer: https://google.com",
        "IP: 127.0.0.1",
    ):
        assert expected in text


def test_no_note_when_the_form_sent_nothing_beyond_the_lead() -> None:
    assert lead_note(payload_of({"lead": {"name": "L"}, "contact": {"name": "C"}}), 1, "r") is None


def test_only_names_and_labels_need_the_field_lists() -> None:
    assert not uses_names(payload_of(README_EXAMPLE))
    body = {"lead": {"name": "L", "custom_fields": [{"field_id": 790, "enum": "Premium"}]}}
    assert uses_names(payload_of({**body, "contact": {"name": "C"}}))


def test_field_ids_pass_through_when_the_account_lists_are_unknown() -> None:
    item = item_of(README_EXAMPLE, AccountFields(lead=[], contact=[]))
    values = item["_embedded"]["leads"][0]["custom_fields_values"]
    assert [v.get("field_id") for v in values] == [789, 790, 791]


@pytest.mark.parametrize(
    ("amo_path", "ours"),
    [
        ("_embedded.leads.0.custom_fields_values.1.values.0.enum_id", "lead.custom_fields.1"),
        ("_embedded.leads.0.custom_fields_values.3.field_code", "utm"),
        ("_embedded.leads.0.price", "lead.price"),
        ("_embedded.leads.0._embedded.tags.2.id", "lead.tags.2"),
        ("_embedded.contacts.0.custom_fields_values.0.values.0.value", "contact.phones"),
        ("_embedded.contacts.0.custom_fields_values.2.field_id", "contact.custom_fields.0"),
        ("metadata.form_name", "form_name"),
        ("pipeline_id", "pipeline_id"),
        ("source_uid", "request"),
    ],
)
def test_amocrm_error_paths_point_at_what_the_caller_sent(amo_path: str, ours: str) -> None:
    body = {
        **README_EXAMPLE,
        "contact": {
            **README_EXAMPLE["contact"],
            "custom_fields": [{"field_id": 903, "value": "x"}],
        },
    }
    payload = payload_of(body)
    assert locate(payload, built_of(body), amo_path).field == ours


@given(st.text(min_size=1, max_size=80))
def test_form_ids_are_short_stable_slugs(name: str) -> None:
    slug = form_id(name)
    assert slug == form_id(name)
    assert 0 < len(slug) <= 64
    assert all(ch.isascii() and (ch.isalnum() or ch == "_") for ch in slug)


def test_a_listed_phone_without_digits_is_kept_for_the_note_and_names_the_contact() -> None:
    request = parse_lead_request({"lead": {"name": "L"}, "contact": {"phones": ["call me"]}})
    assert request.contact.phones == []
    assert request.contact.name == "call me"
    assert request.warnings == [
        {
            "field": "contact.phones.0",
            "problem": "no digits, so not a phone number; kept in the note",
        }
    ]
