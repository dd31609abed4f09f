"""A stored lead → one `POST /api/v4/leads/complex` item (direct mode), and finding it again."""

from __future__ import annotations

from typing import Any

import pytest

from amogate.amocrm.errors import FieldError
from amogate.leads.complex_item import (
    DELIVERY_FIELD_CODE,
    ComplexItem,
    DeliveryFieldMissing,
    complex_item,
    delivery_field_refused,
    delivery_field_request,
    delivery_id_of,
    find_by_delivery_id,
    has_delivery_field,
    linked_contact_refused,
)
from amogate.leads.mapping import AccountFields, lead_note
from amogate.leads.refusals import locate, without_refused
from tests.leads.helpers import CONTACT_FIELDS, LEAD_FIELDS
from tests.leads.test_mapping import README_EXAMPLE, payload_of

JSON = dict[str, Any]
DELIVERY_ID = "d" * 32
DELIVERY_FIELD: JSON = {"id": 990, "name": "amogate delivery id", "code": DELIVERY_FIELD_CODE}
REFERRER_FIELD: JSON = {"id": 804, "name": "referrer", "code": "REFERRER", "type": "tracking_data"}
FIELDS = AccountFields(
    lead=[*LEAD_FIELDS, REFERRER_FIELD, {**DELIVERY_FIELD, "type": "text"}],
    contact=CONTACT_FIELDS,
)


def built_of(
    body: JSON, contact_id: int | None = None, fields: AccountFields = FIELDS
) -> ComplexItem:
    return complex_item(
        payload_of(body),
        fields,
        delivery_id=DELIVERY_ID,
        created_at=1_700_000_000,
        contact_id=contact_id,
    )


def test_the_readme_example_becomes_one_lead_in_its_pipeline_with_a_new_contact() -> None:
    body = {
        **README_EXAMPLE,
        "lead": {**README_EXAMPLE["lead"], "status_id": 55, "responsible_user_id": 7},
    }

    item = built_of(body).item

    assert item["request_id"] == DELIVERY_ID
    assert (item["pipeline_id"], item["status_id"]) == (123456, 55)
    assert (item["name"], item["price"], item["responsible_user_id"]) == ("Yangi mijoz", 50000, 7)
    assert item["created_at"] == 1_700_000_000
    assert item["custom_fields_values"] == [
        {"field_id": 789, "values": [{"value": "text"}]},
        {"field_id": 790, "values": [{"enum_id": 1}]},
        {"field_id": 791, "values": [{"enum_id": 11}, {"enum_id": 12}]},
        {"field_code": "UTM_SOURCE", "values": [{"value": "google"}]},
        {"field_code": "UTM_MEDIUM", "values": [{"value": "cpc"}]},
        {"field_code": "UTM_CAMPAIGN", "values": [{"value": "spring_sale"}]},
        {"field_code": "REFERRER", "values": [{"value": "https://site/contact"}]},
        {"field_code": DELIVERY_FIELD_CODE, "values": [{"value": DELIVERY_ID}]},
    ]
    assert item["_embedded"]["tags"] == [{"name": "website"}, {"name": "hot"}, {"id": 42}]
    assert item["_embedded"]["contacts"] == [
        {
            "name": "Alisher Navoi",
            "responsible_user_id": 7,
            "custom_fields_values": [
                {
                    "field_code": "PHONE",
                    "values": [{"value": "+998901234567", "enum_code": "WORK"}],
                },
                {
                    "field_code": "EMAIL",
                    "values": [{"value": "alisher@example.com", "enum_code": "WORK"}],
                },
            ],
        }
    ]


def test_a_direct_lead_carries_no_metadata_so_it_skips_unsorted() -> None:
    item = built_of(README_EXAMPLE).item

    assert "metadata" not in item
    assert "metadata" not in item["_embedded"]
    assert set(item["_embedded"]) == {"tags", "contacts"}
    assert "source_uid" not in item


def test_a_matched_contact_is_linked_by_id_and_what_it_would_overwrite_goes_to_the_note() -> None:
    body = {
        **README_EXAMPLE,
        "contact": {
            **README_EXAMPLE["contact"],
            "custom_fields": [{"field_name": "Telegram", "value": "@alisher"}],
        },
    }
    payload = payload_of(body)

    built = complex_item(
        payload, FIELDS, delivery_id=DELIVERY_ID, created_at=1_700_000_000, contact_id=555
    )

    assert built.item["_embedded"]["contacts"] == [{"id": 555}]
    assert [(r["field"], r["value"]) for r in built.remarks] == [
        ("contact.name", "Alisher Navoi"),
        ("contact.custom_fields.0", "@alisher"),
    ]
    assert all("existing contact 555" in r["problem"] for r in built.remarks)
    note = lead_note({**payload, "remarks": built.remarks}, 1, "r")
    assert note is not None
    assert "@alisher" in note["params"]["text"]


def test_an_account_without_the_delivery_field_gets_no_item() -> None:
    fields = AccountFields(lead=LEAD_FIELDS, contact=CONTACT_FIELDS)

    with pytest.raises(DeliveryFieldMissing, match=DELIVERY_FIELD_CODE):
        built_of(README_EXAMPLE, fields=fields)
    assert not has_delivery_field(fields)
    assert has_delivery_field(FIELDS)


def test_referrer_is_left_out_when_the_account_lacks_it_or_the_page_is_too_long() -> None:
    without = AccountFields(lead=[*LEAD_FIELDS, DELIVERY_FIELD], contact=CONTACT_FIELDS)
    long_page = {**README_EXAMPLE, "form_page": "https://site/" + "a" * 300}

    for built in (built_of(README_EXAMPLE, fields=without), built_of(long_page)):
        codes = [v.get("field_code") for v in built.item["custom_fields_values"]]
        assert "REFERRER" not in codes
        assert codes[-1] == DELIVERY_FIELD_CODE


def test_a_minimal_lead_has_only_its_name_contact_and_delivery_id() -> None:
    item = built_of({"lead": {"name": "L"}, "contact": {"phone": "90 123 45 67"}}).item

    assert item == {
        "name": "L",
        "custom_fields_values": [
            {"field_code": DELIVERY_FIELD_CODE, "values": [{"value": DELIVERY_ID}]}
        ],
        "_embedded": {
            "contacts": [
                {
                    "name": "+998901234567",
                    "custom_fields_values": [
                        {
                            "field_code": "PHONE",
                            "values": [{"value": "+998901234567", "enum_code": "WORK"}],
                        }
                    ],
                }
            ]
        },
        "created_at": 1_700_000_000,
        "request_id": DELIVERY_ID,
    }


@pytest.mark.parametrize(
    ("amo_path", "ours"),
    [
        ("custom_fields_values.1.values.0.enum_id", "lead.custom_fields.1"),
        ("custom_fields_values.3", "utm"),
        ("custom_fields_values.6.values.0.value", "form_page"),
        ("_embedded.tags.2.id", "lead.tags.2"),
        ("_embedded.contacts.0.custom_fields_values.1.values.0.value", "contact.emails"),
        ("status_id", "lead.status_id"),
        ("price", "lead.price"),
        ("pipeline_id", "pipeline_id"),
        ("name", "lead.name"),
        ("_embedded.contacts.0.name", "contact.name"),
        ("_embedded.contacts.0.id", "contact"),
        ("created_at", "request"),
        ("custom_fields_values.7.values.0.value", "request"),
    ],
)
def test_amocrm_error_paths_in_a_complex_item_point_at_what_the_caller_sent(
    amo_path: str, ours: str
) -> None:
    body = {**README_EXAMPLE, "lead": {**README_EXAMPLE["lead"], "status_id": 55}}

    assert locate(payload_of(body), built_of(body), amo_path).field == ours


def test_a_refused_value_is_taken_out_and_the_lead_sent_again_without_it() -> None:
    body = {**README_EXAMPLE, "lead": {**README_EXAMPLE["lead"], "status_id": 55}}
    payload = payload_of(body)
    built = complex_item(payload, FIELDS, delivery_id=DELIVERY_ID, created_at=1)
    errors = [
        FieldError("NotSupportedChoice", "status_id", "bad status"),
        FieldError("NotSupportedChoice", "custom_fields_values.1.values.0.enum_id", "no option"),
    ]

    result = without_refused(payload, built, errors)

    assert result is not None
    kept, remarks = result
    again = complex_item(kept, FIELDS, delivery_id=DELIVERY_ID, created_at=1).item
    assert "status_id" not in again
    assert [v.get("field_id") for v in again["custom_fields_values"]][:2] == [789, 791]
    assert {r["field"] for r in remarks} == {"lead.status_id", "lead.custom_fields.1"}


def test_a_refused_linked_contact_or_delivery_field_is_told_apart_from_other_refusals() -> None:
    built = built_of(README_EXAMPLE, contact_id=555)
    at = built.delivery_path

    assert linked_contact_refused([FieldError("NotSupportedChoice", "_embedded.contacts.0.id", "")])
    assert not linked_contact_refused([FieldError("NotSupportedChoice", "_embedded.tags.0.id", "")])
    assert delivery_field_refused(built, [FieldError("NotSupportedChoice", f"{at}.field_code", "")])
    assert not delivery_field_refused(built, [FieldError("X", f"{at}0.values", "")])
    assert not delivery_field_refused(built, [FieldError("X", "custom_fields_values.0", "")])


def test_the_delivery_field_is_created_as_an_api_only_text_field() -> None:
    assert delivery_field_request() == [
        {
            "name": "amogate delivery id",
            "type": "text",
            "code": DELIVERY_FIELD_CODE,
            "is_api_only": True,
        }
    ]


def lead(lead_id: int, delivery_id: str | None, created_at: int = 100) -> JSON:
    values: list[JSON] = [{"field_id": 789, "field_code": None, "values": [{"value": "x"}]}]
    if delivery_id is not None:
        values.append(
            {"field_id": 990, "field_code": DELIVERY_FIELD_CODE, "values": [{"value": delivery_id}]}
        )
    return {"id": lead_id, "created_at": created_at, "custom_fields_values": values}


def test_the_lead_carrying_a_delivery_id_is_found_in_a_page() -> None:
    page = [
        lead(1, None),
        lead(2, "other"),
        lead(3, DELIVERY_ID),
        {"id": 4, "custom_fields_values": None},
    ]

    found = find_by_delivery_id(page, DELIVERY_ID)

    assert found is not None
    assert found["id"] == 3
    assert delivery_id_of(page[1]) == "other"
    assert delivery_id_of(page[3]) is None
    assert find_by_delivery_id(page, "never-sent") is None
    assert find_by_delivery_id([], DELIVERY_ID) is None


def test_of_two_leads_with_one_delivery_id_the_newest_is_found() -> None:
    found = find_by_delivery_id(
        [lead(5, DELIVERY_ID, 200), lead(9, DELIVERY_ID, 100), lead(7, DELIVERY_ID, 200)],
        DELIVERY_ID,
    )

    assert found is not None
    assert found["id"] == 7
