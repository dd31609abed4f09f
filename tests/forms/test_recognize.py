"""Field recognition: names in English, Uzbek and Russian, `--map`, UTM, click ids, the note."""

from __future__ import annotations

import pytest

from amogate.forms.recognize import known_target, recognize, tags_in_text
from amogate.forms.submission import FormSettings, Visit, lead_request, read_submission


@pytest.mark.parametrize(
    ("field", "target"),
    [
        ("name", "name"),
        ("Name", "name"),
        ("NAME", "name"),
        ("fio", "name"),
        ("FIO", "name"),
        ("ism", "name"),
        ("Ismingiz", "name"),
        ("imya", "name"),
        ("Имя", "name"),
        ("your-name", "name"),
        ("full_name", "name"),
        ("phone", "phone"),
        ("Phone", "phone"),
        ("tel", "phone"),
        ("telefon", "phone"),
        ("Telefon raqami", "phone"),
        ("your-tel", "phone"),
        ("Телефон", "phone"),
        ("email", "email"),
        ("E-mail", "email"),
        ("pochta", "email"),
        ("your-email", "email"),
        ("comment", "comment"),
        ("message", "comment"),
        ("your-message", "comment"),
        ("izoh", "comment"),
        ("xabar", "comment"),
        ("kommentariy", "comment"),
        ("soobshchenie", "comment"),
        ("Комментарий", "comment"),
        ("Textarea", "comment"),
        ("first_name", "first_name"),
        ("familiya", "last_name"),
    ],
)
def test_common_field_names_are_recognised_in_any_case(field: str, target: str) -> None:
    assert known_target(field) == target


@pytest.mark.parametrize("field", ["Shahar", "city", "formid", "company", "product"])
def test_other_names_are_ordinary_fields(field: str) -> None:
    assert known_target(field) is None


def test_unmapped_fields_are_kept_for_the_note_in_the_order_sent() -> None:
    found = recognize(
        [("Name", "Dilnoza"), ("Shahar", "Toshkent"), ("Phone", "+998901234567"), ("Kurs", "A")],
        {},
    )
    assert found.names == ["Dilnoza"]
    assert found.phones == ["+998901234567"]
    assert found.other == [("Shahar", "Toshkent"), ("Kurs", "A")]


def test_map_overrides_recognition_and_names_custom_fields() -> None:
    found = recognize(
        [("Name", "Kompaniya MChJ"), ("Contact", "Dilnoza"), ("Budget", "5 000 000")],
        {"name": "field:Company name", "contact": "name", "BUDGET": "lead.price"},
    )
    assert found.custom_fields == [("Company name", "Kompaniya MChJ")]
    assert found.names == ["Dilnoza"]
    assert found.lead_price == "5 000 000"


def test_utm_fields_and_click_ids_are_tracking_not_note() -> None:
    found = recognize(
        [("utm_source", "facebook"), ("UTM_Campaign", "may"), ("gclid", "abc"), ("fbclid", "f1")],
        {},
    )
    assert found.utm == {"utm_source": "facebook", "utm_campaign": "may"}
    assert found.tracking == {"GCLID": "abc", "FBCLID": "f1"}
    assert found.other == []


def test_utm_inside_tildas_cookies_string() -> None:
    cookies = (
        "TILDAUTM=utm_source%3Dyandex%7C%7C%7Cutm_medium%3Dcpc%7C%7C%7Cutm_term%3Dkonditsioner"
        "%7C%7C%7C; yclid=777; tildasid=1"
    )
    assert tags_in_text(cookies) == [
        ("utm_source", "yandex"),
        ("utm_medium", "cpc"),
        ("utm_term", "konditsioner"),
        ("yclid", "777"),
    ]
    found = recognize([("COOKIES", cookies), ("utm_source", "direct-field")], {})
    assert found.utm["utm_source"] == "direct-field"  # a field sent on its own wins
    assert found.utm["utm_medium"] == "cpc"
    assert found.tracking == {"YCLID": "777"}
    assert found.other == []


def test_honeypot_and_service_fields_never_reach_the_note() -> None:
    found = recognize(
        [("_gotcha", ""), ("tranid", "1:2"), ("g-recaptcha-response", "t"), ("phone", "1")],
        {},
        ignore=["_gotcha"],
    )
    assert found.other == []


def test_a_submission_is_read_by_the_intakes_forgiving_rules() -> None:
    found = recognize([("name", "Dilnoza"), ("email", "not-an-email"), ("Shahar", "Toshkent")], {})
    lead = read_submission(found, FormSettings("Landing", 123, ["web"]), Visit(ip="10.0.0.1"))
    assert lead.lead.name == "Landing: Dilnoza"
    assert lead.pipeline_id == 123
    assert [t.name for t in lead.lead.tags] == ["web"]
    problems = {r.field: r.problem for r in lead.remarks}
    assert "contact.email" in problems  # soft: kept in the note, not refused
    assert problems["Shahar"] == "a form field; kept in the note"


def test_click_ids_go_to_lead_tracking_fields_by_code() -> None:
    body = lead_request(
        recognize([("phone", "1"), ("gclid", "g-1")], {}), FormSettings("F"), Visit()
    )
    assert body["lead"]["custom_fields"] == [{"field_code": "GCLID", "value": "g-1"}]


@pytest.mark.parametrize(
    ("reference", "key"),
    [
        ("UTM_REFERRER", "field_code"),
        ("GCLID", "field_code"),
        ("INN", "field_name"),
        ("Kompaniya nomi", "field_name"),
        ("Shahar", "field_name"),
    ],
)
def test_map_to_a_field_names_it_by_code_or_by_name(reference: str, key: str) -> None:
    found = recognize([("phone", "1"), ("x", "v")], {"x": f"field:{reference}"})
    body = lead_request(found, FormSettings("F"), Visit())
    assert body["lead"]["custom_fields"] == [{key: reference, "value": "v"}]
