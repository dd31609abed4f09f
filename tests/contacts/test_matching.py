"""Search spellings, exact comparison, choosing among matches and what to add: pure."""

from __future__ import annotations

import re
from typing import Any

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amogate.amocrm.models import ChannelValue, ContactCard, contact_card
from amogate.contacts.matching import (
    Channel,
    ContactDedup,
    ContactKey,
    Person,
    Remembered,
    additions,
    choose,
    contact_update,
    email_key,
    hits_by_key,
    merge_persons,
    parse_dedup,
    person_of,
    phone_key,
    search_queries,
    search_query,
    stored_phone_is,
)
from amogate.leads.phones import normalize_phone

JSON = dict[str, Any]
UZ_PHONE = ContactKey("phone", "+998901234567")
RU_PHONE = ContactKey("phone", "+79995551122")
EMAIL = ContactKey("email", "alisher@example.com")


def card(
    contact_id: int,
    *phones: str,
    emails: tuple[str, ...] = (),
    updated_at: int = 1_750_000_000,
    is_deleted: bool = False,
) -> ContactCard:
    return ContactCard(
        id=contact_id,
        name=f"Contact {contact_id}",
        updated_at=updated_at,
        phones=tuple(ChannelValue(p, 800_001, "WORK") for p in phones),
        emails=tuple(ChannelValue(e, None, "PRIV") for e in emails),
        is_deleted=is_deleted,
    )


def digits(text: str) -> str:
    return re.sub(r"\D", "", text)


# --- the mode ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "phone", "email", "shown"),
    [
        ("phone,email", True, True, "phone,email"),
        (" Email , PHONE ", True, True, "phone,email"),
        ("phone", True, False, "phone"),
        ("email", False, True, "email"),
        ("off", False, False, "off"),
        ("OFF", False, False, "off"),
    ],
)
def test_the_matching_mode_is_read_from_its_setting(
    text: str, phone: bool, email: bool, shown: str
) -> None:
    mode = parse_dedup(text)

    assert (mode.phone, mode.email, str(mode)) == (phone, email, shown)
    assert mode.enabled is (phone or email)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("phone,", "empty"),
        ("telegram", "unknown contact matching mode 'telegram'"),
        ("phone,name", "unknown contact matching mode 'name'"),
        ("phone,phone", "twice"),
        ("off,phone", "cannot be combined"),
    ],
)
def test_a_wrong_matching_mode_is_refused_with_the_accepted_values(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as caught:
        parse_dedup(text)

    assert "phone,email, phone, email, off" in str(caught.value) or problem == "twice"


# --- keys -------------------------------------------------------------------------------------


def test_a_leads_keys_follow_the_mode_and_skip_phones_that_could_not_be_normalised() -> None:
    person = person_of(
        {
            "phones": [
                {"value": "+998901234567", "type": "WORK"},
                {"value": "12-34 (typo)", "type": "MOB"},
                {"value": "+998901234567", "type": "MOB"},
            ],
            "emails": [{"value": "Alisher@Example.com", "type": "WORK"}],
        }
    )

    assert person.keys_for() == (UZ_PHONE, EMAIL)
    assert person.keys_for(ContactDedup(phone=True, email=False)) == (UZ_PHONE,)
    assert person.keys_for(ContactDedup(phone=False, email=True)) == (EMAIL,)
    assert person.keys_for(parse_dedup("off")) == ()


def test_a_key_reads_back_from_its_text() -> None:
    assert str(UZ_PHONE) == "phone:+998901234567"
    assert ContactKey.parse(str(UZ_PHONE)) == UZ_PHONE
    assert ContactKey.parse(str(EMAIL)) == EMAIL


@pytest.mark.parametrize(
    "text",
    ["phone:998901234567", "phone:+998 90 123 45 67", "email:no-at-sign", "fax:+998901234567", ""],
)
def test_a_text_that_is_no_normalised_key_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a contact key"):
        ContactKey.parse(text)


def test_email_keys_are_lower_case_and_need_an_at_sign() -> None:
    assert email_key(" Alisher@Example.COM ") == EMAIL
    assert email_key("not an email") is None
    assert phone_key("+998 90 123 45 67") is None


# --- search spellings ---------------------------------------------------------------------------


def test_a_phone_is_searched_by_its_national_significant_number() -> None:
    assert search_query(UZ_PHONE) == "901234567"
    assert search_query(RU_PHONE) == "9995551122"


def test_a_phone_with_a_short_national_number_is_searched_by_all_its_digits() -> None:
    assert search_query(ContactKey("phone", "+3741234")) == "3741234"


def test_an_email_is_searched_as_itself() -> None:
    assert search_query(EMAIL) == "alisher@example.com"


def test_keys_sharing_a_national_number_share_one_search() -> None:
    us = ContactKey("phone", "+19995551122")

    assert search_queries([RU_PHONE, EMAIL, us, RU_PHONE]) == {
        "9995551122": (RU_PHONE, us),
        "alisher@example.com": (EMAIL,),
    }


REGIONS = st.sampled_from(["UZ", "RU", "KZ", "UA", "DE", "US", "IT", "GB", "TR"])


def valid_in(text: str, region: str) -> bool:
    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(text, region)))
    except phonenumbers.NumberParseException:
        return False


@settings(deadline=None)  # behaviour, not speed: the machine is shared
@given(region=REGIONS, account_region=st.sampled_from(["UZ", "RU"]), kind=st.integers(0, 1))
def test_every_usual_spelling_of_a_number_is_found_by_its_query_and_then_matches(
    region: str, account_region: str, kind: int
) -> None:
    # The example numbers of each country (mobile and fixed line): real numbering plans.
    types = [phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]
    number = phonenumbers.example_number_for_type(region, types[kind])
    assert number is not None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    key = phone_key(e164)
    assert key is not None
    query = search_query(key)
    international = [
        phonenumbers.format_number(number, f)
        for f in (
            phonenumbers.PhoneNumberFormat.E164,
            phonenumbers.PhoneNumberFormat.INTERNATIONAL,
            phonenumbers.PhoneNumberFormat.RFC3966,
        )
    ]
    # Spellings without a "+": the country code left out, or its "+" only.
    national = [
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL),
        str(phonenumbers.national_significant_number(number)),
        digits(e164),
    ]

    for spelling in international + national:
        assert query in digits(spelling), spelling  # amoCRM's search, digits as typed
    for spelling in international:
        assert stored_phone_is(spelling, e164, account_region), spelling
    for spelling in national:
        # Without a "+" a spelling is the account's country's number when it is another valid
        # one there (a Ukrainian "50 123 45 67" is an Uzbek mobile in Tashkent).
        there = normalize_phone(spelling, account_region)
        foreign = there != e164 and valid_in(spelling, account_region)
        assert stored_phone_is(spelling, e164, account_region) is not foreign, spelling


# --- exact comparison ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "region"),
    [
        ("+998 90 123-45-67", "UZ"),
        ("998901234567", "UZ"),
        ("901234567", "UZ"),
        ("90 123 45 67", "UZ"),
        ("00998901234567", "RU"),
        ("901234567", "RU"),  # no valid Russian number: read as Uzbek, the key's country
    ],
)
def test_a_stored_phone_matches_when_it_is_the_same_number(stored: str, region: str) -> None:
    assert stored_phone_is(stored, "+998901234567", region)


def test_a_trunk_8_is_the_same_number_as_plus_7_in_a_russian_account() -> None:
    assert stored_phone_is("8 (999) 555-11-22", "+79995551122", "RU")


def test_a_russian_8_number_in_an_uzbek_account_is_read_as_russian() -> None:
    assert stored_phone_is("8 (999) 555-11-22", "+79995551122", "UZ")


def test_a_foreign_number_stored_without_its_plus_is_the_same_number() -> None:
    assert stored_phone_is("49 1512 3456789", "+4915123456789", "UZ")


def test_a_number_valid_in_the_accounts_country_is_never_read_as_another_country() -> None:
    # "050 123 4567" is a Ukrainian mobile in a Ukrainian account, not the Italian +39 050…
    assert stored_phone_is("0501234567", "+380501234567", "UA")
    assert not stored_phone_is("0501234567", "+390501234567", "UA")


@pytest.mark.parametrize(
    "stored",
    ["+998 90 123-45-678", "+998 99 012-34-56", "1901234567", "+7 901 234-56-7", "no digits"],
)
def test_a_phone_that_only_shares_digits_is_another_number(stored: str) -> None:
    assert not stored_phone_is(stored, "+998901234567", "UZ")


def test_search_hits_are_kept_only_for_the_keys_they_really_hold() -> None:
    by_phone = card(1, "+998 90 123-45-67")
    longer = card(2, "+998 90 123-45-678")
    by_email = card(3, emails=("ALISHER@example.com",))
    deleted = card(4, "+998901234567", is_deleted=True)
    # A hit through another field: amoCRM's search looks at every field, the card at phones.
    other_field = contact_card(
        {
            "id": 5,
            "name": "901234567",
            "updated_at": 1,
            "custom_fields_values": [
                {"field_code": "NOTE", "values": [{"value": "call 901234567"}]},
                {"field_code": "EMAIL", "values": [{"value": "x.alisher@example.com"}]},
            ],
        }
    )

    found = hits_by_key([UZ_PHONE, EMAIL], [by_phone, longer, by_email, deleted, other_field], "UZ")

    assert found == {UZ_PHONE: (by_phone,), EMAIL: (by_email,)}


# --- choosing ----------------------------------------------------------------------------------


def test_no_exact_match_means_a_new_contact() -> None:
    assert choose([UZ_PHONE], [card(1, "+998 90 123-45-678")], "UZ") is None


def test_one_match_is_linked_and_not_ambiguous() -> None:
    match = choose([UZ_PHONE, EMAIL], [card(7, "998901234567")], "UZ")

    assert match is not None
    assert (match.contact_id, match.ambiguous, match.contact_ids) == (7, False, (7,))
    assert match.keys == (UZ_PHONE,)
    assert match.remembered is False


def test_several_matches_choose_the_latest_updated_and_say_so() -> None:
    older = card(1, "+998901234567", updated_at=100)
    newest = card(2, emails=("alisher@example.com",), updated_at=300)
    middle = card(3, "+998901234567", emails=("alisher@example.com",), updated_at=200)

    match = choose([UZ_PHONE, EMAIL], [older, newest, middle, newest], "UZ")

    assert match is not None
    assert match.contact_id == 2
    assert match.card == newest
    assert match.ambiguous is True
    assert match.contact_ids == (2, 3, 1)
    assert match.keys == (EMAIL,)


def test_equal_update_times_are_broken_by_the_higher_id() -> None:
    match = choose([UZ_PHONE], [card(5, "+998901234567"), card(9, "+998901234567")], "UZ")

    assert match is not None
    assert match.contact_id == 9


def test_the_same_contact_from_two_searches_is_one_match() -> None:
    same = card(4, "+998901234567", emails=("alisher@example.com",))

    match = choose([UZ_PHONE, EMAIL], [same, same], "UZ")

    assert match is not None
    assert (match.ambiguous, match.keys) == (False, (UZ_PHONE, EMAIL))


def test_a_remembered_contact_wins_without_looking_at_search_hits() -> None:
    remembered = {UZ_PHONE: Remembered(42, at=1000.0)}

    match = choose([UZ_PHONE, EMAIL], [card(7, "+998901234567")], "UZ", remembered)

    assert match is not None
    assert (match.contact_id, match.card, match.remembered) == (42, None, True)
    assert match.ambiguous is False


def test_two_remembered_contacts_for_one_person_choose_the_latest_link() -> None:
    remembered = {UZ_PHONE: Remembered(42, at=1000.0), EMAIL: Remembered(43, at=2000.0)}

    match = choose([UZ_PHONE, EMAIL], [], "UZ", remembered)

    assert match is not None
    assert (match.contact_id, match.contact_ids, match.ambiguous) == (43, (43, 42), True)
    assert match.keys == (EMAIL,)


def test_links_remembered_for_other_keys_do_not_count() -> None:
    assert choose([EMAIL], [], "UZ", {UZ_PHONE: Remembered(42, at=1.0)}) is None


# --- adding to the chosen contact ----------------------------------------------------------------


def test_only_values_the_contact_lacks_are_added() -> None:
    person = Person(
        phones=(Channel("+998901234567", "WORK"), Channel("+998935554433", "MOB")),
        emails=(Channel("Alisher@Example.com", "WORK"), Channel("new@example.com", "PRIV")),
    )
    existing = card(7, "+998 90 123-45-67", emails=("alisher@example.com",))

    new = additions(person, existing, "UZ")

    assert new == Person(
        phones=(Channel("+998935554433", "MOB"),), emails=(Channel("new@example.com", "PRIV"),)
    )


def test_a_number_the_contact_holds_in_a_foreign_national_spelling_is_not_added_again() -> None:
    person = Person(phones=(Channel("+79995551122"),))

    assert additions(person, card(7, "8 (999) 555-11-22"), "UZ") == Person()


def test_the_update_keeps_every_existing_value_and_kind_before_the_new_ones() -> None:
    existing = ContactCard(
        id=7,
        name="Alisher",
        updated_at=1,
        phones=(
            ChannelValue("+998 90 123-45-67", 800_001, "WORK"),
            ChannelValue("+998 71 200-00-00", None, "HOME"),
            ChannelValue("998712000001"),
        ),
        emails=(ChannelValue("alisher@example.com", 800_010, "WORK"),),
    )

    update = contact_update(existing, Person(phones=(Channel("+998935554433", "MOB"),)))

    assert update == {
        "id": 7,
        "custom_fields_values": [
            {
                "field_code": "PHONE",
                "values": [
                    {"value": "+998 90 123-45-67", "enum_id": 800_001},
                    {"value": "+998 71 200-00-00", "enum_code": "HOME"},
                    {"value": "998712000001"},
                    {"value": "+998935554433", "enum_code": "MOB"},
                ],
            }
        ],
    }


def test_a_first_email_creates_the_field_with_just_that_value() -> None:
    update = contact_update(card(7, "+998901234567"), Person(emails=(Channel("a@b.uz"),)))

    assert update == {
        "id": 7,
        "custom_fields_values": [
            {"field_code": "EMAIL", "values": [{"value": "a@b.uz", "enum_code": "WORK"}]}
        ],
    }


def test_nothing_new_means_no_update() -> None:
    assert contact_update(card(7, "+998901234567"), Person()) is None


def test_merging_persons_keeps_each_number_and_email_once() -> None:
    merged = merge_persons(
        [
            Person(phones=(Channel("+998901234567"),), emails=(Channel("A@b.uz"),)),
            Person(phones=(Channel("+998901234567", "MOB"), Channel("77 12"))),
            Person(phones=(Channel("7712"),), emails=(Channel("a@B.uz"), Channel("c@d.uz"))),
        ],
        "UZ",
    )

    assert merged == Person(
        phones=(Channel("+998901234567"), Channel("77 12")),
        emails=(Channel("A@b.uz"), Channel("c@d.uz")),
    )
