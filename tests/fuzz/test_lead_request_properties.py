"""Properties of the lead request reader and of phone normalisation, over generated input.

`parse_lead_request` turns any decoded JSON into a `LeadRequest` or a `ValidationFailed` that
names only the fatal mistakes, with the original gateway's texts; a request with a lead name and
a way to reach the person is never refused, and what follows it (the stored payload, the amoCRM
form item, the note) never fails on it. The same property over real HTTP, against the sandbox,
is in tests/leads/test_soft_intake.py.
"""

from __future__ import annotations

import re
from typing import Any

import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amogate.errors import ValidationFailed
from amogate.leads.mapping import AccountFields, form_item, note_text, stored_payload
from amogate.leads.phones import PhoneWithoutDigits, normalize_phone
from amogate.leads.reading import NOT_AN_OBJECT_BODY, parse_lead_request
from amogate.leads.schemas import (
    CONTACT_FIELD_REQUIRED,
    CONTACT_REQUIRED,
    LEAD_NAME_REQUIRED,
    LEAD_REQUIRED,
    LeadRequest,
)
from tests.fuzz.strategies import (
    NAMES,
    WORDS,
    json_values,
    numbers,
    reachable_requests,
    request_object,
    scalars,
    texts,
)
from tests.leads.helpers import FIELDS

PROPERTY_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

FATAL = {
    "request": {NOT_AN_OBJECT_BODY},
    "lead": {LEAD_REQUIRED},
    "lead.name": {LEAD_NAME_REQUIRED},
    "contact": {CONTACT_REQUIRED, CONTACT_FIELD_REQUIRED},
}


def assert_refusal_is_fatal_only(refused: ValidationFailed) -> None:
    details = refused.details
    assert details, "a refusal names at least one problem"
    for path, message in details.items():
        assert message in FATAL.get(path, set()), f"{path}: {message!r} is not a fatal mistake"


def assert_the_lead_goes_all_the_way(request: LeadRequest) -> None:
    assert request.lead.name.strip()
    payload = stored_payload(request, "UZ")
    for fields in (FIELDS, AccountFields(lead=[], contact=[])):
        built = form_item(payload, fields, delivery_id="d" * 32, created_at=1_700_000_000)
        assert built.item["_embedded"]["leads"][0]["name"] == request.lead.name
        note_text({**payload, "remarks": payload["remarks"] + built.remarks})
    for warning in request.warnings:
        assert set(warning) == {"field", "problem"}
        assert warning["field"]
        assert warning["problem"]


@PROPERTY_SETTINGS
@given(data=st.one_of(json_values, request_object))
def test_any_json_is_a_lead_request_or_a_refusal_naming_only_fatal_mistakes(data: Any) -> None:
    try:
        request = parse_lead_request(data)
    except ValidationFailed as refused:
        assert_refusal_is_fatal_only(refused)
    else:
        assert_the_lead_goes_all_the_way(request)


@PROPERTY_SETTINGS
@given(data=reachable_requests())
def test_a_named_lead_with_a_way_to_reach_the_person_is_never_refused(
    data: dict[str, Any],
) -> None:
    assert_the_lead_goes_all_the_way(parse_lead_request(data))


# --- valid requests --------------------------------------------------------------------------

PHONES = st.from_regex(r"\+?[0-9][0-9 ()\-]{0,30}", fullmatch=True)
EMAILS = st.tuples(
    st.from_regex(r"[a-z0-9]([a-z0-9_+-]{0,20}[a-z0-9])?(\.[a-z0-9]{1,10}){0,2}", fullmatch=True),
    st.sampled_from(["example.com", "mail.uz", "yandex.ru", "pochta.example.org"]),
).map("@".join)
PADDING = st.sampled_from(["", " ", "  "])


@st.composite
def valid_requests(draw: st.DrawFn) -> dict[str, Any]:
    def padded(text: str) -> str:
        return draw(PADDING) + text + draw(PADDING)

    contact: dict[str, Any] = {
        "name": padded(draw(NAMES)),
        "phone": padded(draw(PHONES)),
        "email": draw(EMAILS),
        "phones": draw(st.lists(PHONES, max_size=3)),
        "emails": [{"value": e, "type": "PRIV"} for e in draw(st.lists(EMAILS, max_size=3))],
    }
    return {
        "lead": {
            "name": padded(draw(NAMES)),
            "price": draw(st.one_of(st.none(), st.integers(0, 10**12))),
            "tags": draw(st.lists(WORDS, max_size=3)),
        },
        "contact": contact,
        "pipeline_id": draw(st.one_of(st.none(), st.integers(1, 2**53))),
        "utm": {"utm_source": draw(WORDS), "utm_campaign": draw(WORDS)},
    }


@PROPERTY_SETTINGS
@given(data=valid_requests())
def test_valid_requests_pass_and_keep_their_names_phones_and_emails(data: dict[str, Any]) -> None:
    request = parse_lead_request(data)
    assert request.warnings == []
    lead, contact = data["lead"], data["contact"]
    assert request.lead.name == lead["name"].strip()
    assert request.lead.price == lead["price"]
    assert [t.name for t in request.lead.tags] == lead["tags"]
    assert request.pipeline_id == data["pipeline_id"]
    assert request.contact.name == contact["name"].strip()
    assert request.contact.phone == contact["phone"].strip()
    assert request.contact.email == contact["email"]
    assert [p.value for p in request.contact.phones] == [p.strip() for p in contact["phones"]]
    assert [(e.value, e.type) for e in request.contact.emails] == [
        (e["value"], "PRIV") for e in contact["emails"]
    ]
    assert request.utm == data["utm"]


@PROPERTY_SETTINGS
@given(data=request_object)
def test_a_request_without_lead_or_contact_names_them_with_the_original_messages(
    data: dict[str, Any],
) -> None:
    data.pop("lead", None)
    data.pop("contact", None)
    with pytest.raises(ValidationFailed) as refused:
        parse_lead_request(data)
    assert refused.value.details == {"lead": LEAD_REQUIRED, "contact": CONTACT_REQUIRED}


@PROPERTY_SETTINGS
@given(
    data=valid_requests(),
    missing=st.sampled_from(["lead", "contact"]),
    replacement=st.one_of(st.none(), st.booleans(), numbers, texts, st.lists(scalars)),
)
def test_a_lead_or_contact_that_is_not_an_object_gets_the_original_message(
    data: dict[str, Any], missing: str, replacement: Any
) -> None:
    data[missing] = replacement
    with pytest.raises(ValidationFailed) as refused:
        parse_lead_request(data)
    expected = LEAD_REQUIRED if missing == "lead" else CONTACT_REQUIRED
    assert refused.value.details == {missing: expected}


@PROPERTY_SETTINGS
@given(
    data=valid_requests(),
    name=st.one_of(st.just(""), st.just("  "), st.none(), st.booleans(), st.lists(scalars)),
)
def test_a_lead_without_a_usable_name_gets_the_original_message(
    data: dict[str, Any], name: Any
) -> None:
    data["lead"]["name"] = name
    with pytest.raises(ValidationFailed) as refused:
        parse_lead_request(data)
    assert refused.value.details == {"lead.name": LEAD_NAME_REQUIRED}


# --- phones ----------------------------------------------------------------------------------

REGIONS = st.sampled_from(["UZ", "RU", "KZ", "TJ", "US", "GB", "DE"])
# libphonenumber's E.164 form: "+", country code, national number. It can exceed E.164's 15
# digits when the metadata calls a long number possible (German numbers, for instance).
E164 = re.compile(r"^\+[1-9]\d{2,16}$")
phone_texts = st.one_of(
    PHONES,
    st.text(max_size=30),
    st.from_regex(r"(00|\+|8)?[0-9]{6,15}", fullmatch=True),
)


@PROPERTY_SETTINGS
@given(raw=phone_texts, region=REGIONS)
def test_a_phone_with_digits_is_kept_and_one_without_is_refused(raw: str, region: str) -> None:
    if not re.search(r"\d", raw):
        with pytest.raises(PhoneWithoutDigits):
            normalize_phone(raw, region)
        return
    result = normalize_phone(raw, region)
    assert result
    assert E164.match(result) or result == raw.strip(), "E.164 or the input as given"


@PROPERTY_SETTINGS
@given(raw=phone_texts, region=REGIONS, other_region=REGIONS)
def test_a_normalised_phone_is_e164_and_parses_back_to_the_same_number(
    raw: str, region: str, other_region: str
) -> None:
    if not re.search(r"\d", raw):
        return
    result = normalize_phone(raw, region)
    if result == raw.strip():
        return  # kept as given (not a possible number, or already in E.164)
    assert E164.match(result), f"{raw!r} became {result!r}"
    parsed = phonenumbers.parse(result, None)
    assert phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == result
    # An international number no longer depends on the default region.
    assert normalize_phone(result, other_region) == result


@PROPERTY_SETTINGS
@given(subscriber=st.integers(0, 10**8 - 1), region=REGIONS, spaced=st.booleans())
def test_an_uzbek_mobile_number_becomes_the_same_e164_from_any_region(
    subscriber: int, region: str, spaced: bool
) -> None:
    digits = f"9{subscriber:08d}"
    raw = (
        f"+998 {digits[:2]} {digits[2:5]}-{digits[5:7]}-{digits[7:]}"
        if spaced
        else "00998" + digits
    )
    assert normalize_phone(raw, region) == "+998" + digits
