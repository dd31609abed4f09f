from __future__ import annotations

import pytest

from amogate.leads.phones import PhoneWithoutDigits, normalize_phone
from amogate.leads.reading import NO_DIGITS, parse_lead_request


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("90 123-45-67", "+998901234567"),
        ("+998 90 123 45 67", "+998901234567"),
        ("998901234567", "+998901234567"),
        ("00998901234567", "+998901234567"),
        ("+7 (999) 555-11-22", "+79995551122"),
        ("12", "12"),  # digits but not a possible number: sent as given
        # Its E.164 form "+20000000000" would read back as +2000000000: sent as given.
        ("00200000000000", "00200000000000"),
    ],
)
def test_phones_become_e164_or_stay_as_given(raw: str, expected: str) -> None:
    assert normalize_phone(raw, "UZ") == expected


def test_a_phone_without_digits_is_refused() -> None:
    with pytest.raises(PhoneWithoutDigits):
        normalize_phone("call me", "UZ")


@pytest.mark.parametrize("raw", ["²", "①②③", "⁹⁰¹"])
def test_a_phone_of_digit_like_signs_is_set_aside_at_intake_as_at_delivery(raw: str) -> None:
    # Validation once counted "²" as a digit while normalisation refused it at delivery (a 500):
    # both use one digit rule, and the intake keeps such a "phone" for the note only.
    with pytest.raises(PhoneWithoutDigits):
        normalize_phone(raw, "UZ")
    for contact in ({"phone": raw}, {"phones": [raw]}):
        request = parse_lead_request({"lead": {"name": "Buyurtma"}, "contact": contact})
        assert request.contact.phone is None
        assert request.contact.phones == []
        assert [w["problem"] for w in request.warnings][-1] == NO_DIGITS


@pytest.mark.parametrize("raw", ["٩٠١٢٣٤٥٦٧", "９０１２３４５６７"])
def test_phones_in_other_scripts_digits_are_read(raw: str) -> None:
    request = parse_lead_request({"lead": {"name": "Buyurtma"}, "contact": {"phone": raw}})
    assert request.contact.phone is not None
    assert normalize_phone(request.contact.phone, "UZ") == "+998901234567"
