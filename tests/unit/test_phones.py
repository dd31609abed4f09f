from __future__ import annotations

import pytest

from amogate.leads.phones import PhoneWithoutDigits, normalize_phone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("90 123-45-67", "+998901234567"),
        ("+998 90 123 45 67", "+998901234567"),
        ("998901234567", "+998901234567"),
        ("00998901234567", "+998901234567"),
        ("+7 (999) 555-11-22", "+79995551122"),
        ("12", "12"),  # digits but not a possible number: sent as given
    ],
)
def test_phones_become_e164_or_stay_as_given(raw: str, expected: str) -> None:
    assert normalize_phone(raw, "UZ") == expected


def test_a_phone_without_digits_is_refused() -> None:
    with pytest.raises(PhoneWithoutDigits):
        normalize_phone("call me", "UZ")
