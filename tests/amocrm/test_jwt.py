from __future__ import annotations

from datetime import UTC, datetime

import pytest

from amogate.amocrm.jwt import decode_claims, expires_at
from tests.amocrm.helpers import fake_jwt


def test_claims_are_read_without_a_signature_check() -> None:
    token = fake_jwt({"exp": 1751978769, "account_id": 31361463, "base_domain": "amocrm.ru"})

    assert decode_claims(token) == {
        "exp": 1751978769,
        "account_id": 31361463,
        "base_domain": "amocrm.ru",
    }


def test_padded_base64_is_accepted_too() -> None:
    assert decode_claims(fake_jwt({"sub": "42"}, pad=True)) == {"sub": "42"}


@pytest.mark.parametrize(
    "token",
    [
        "",
        "opaque-token",
        "a.b",
        "a.!!!.c",
        "a..c",
        "eyJ0eXAiOiJKV1QifQ.bm90IGpzb24.sig",
        "x.WzFd.y",
    ],
)
def test_anything_that_is_not_a_jwt_gives_no_claims(token: str) -> None:
    assert decode_claims(token) == {}


def test_expires_at_is_an_aware_utc_datetime() -> None:
    token = fake_jwt({"exp": 1751978769})

    assert expires_at(token) == datetime(2025, 7, 8, 12, 46, 9, tzinfo=UTC)


@pytest.mark.parametrize("claims", [{}, {"exp": "soon"}, {"exp": True}, {"exp": 10**20}])
def test_expires_at_is_none_without_a_usable_exp(claims: dict[str, object]) -> None:
    assert expires_at(fake_jwt(claims)) is None
