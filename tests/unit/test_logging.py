"""No token, key, secret or full phone number reaches a log line."""

from __future__ import annotations

import io
import json
import logging

import structlog

from amogate.logging import configure_logging


def test_secrets_and_phones_are_redacted_from_json_logs() -> None:
    stream = io.StringIO()
    configure_logging(log_format="json", level="INFO", stream=stream)
    log = structlog.get_logger("test")
    log.info(
        "oauth.refresh.done",
        access_token="eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
        refresh_token="def50200aabbccddeeff00112233445566",
        client_secret="very-secret-value",
        api_key="test-admin-key-0123456789",
        headers={"Authorization": "Bearer abc.def.ghi", "Accept": "json"},
        phone="+998901234567",
        note="call +998 90 123 45 67 with Bearer sometokenvalue123",
        code="def502000123456789abcdef",
        delivery_id="d1",
    )
    logging.getLogger("uvicorn.error").error("failed with Bearer eyJabcdefghijkl.mnopq.rst")
    text = stream.getvalue()
    for secret in (
        "eyJhbGciOiJSUzI1NiJ9",
        "def50200aabbcc",
        "very-secret-value",
        "test-admin-key-0123456789",
        "abc.def.ghi",
        "901234567",
        "90 123 45 67",
        "sometokenvalue123",
        "def502000123456789abcdef",
        "eyJabcdefghijkl",
    ):
        assert secret not in text, secret
    first = json.loads(text.splitlines()[0])
    assert first["event"] == "oauth.refresh.done"
    assert first["phone"] == "***4567"
    assert first["delivery_id"] == "d1"
    assert first["headers"]["Accept"] == "json"


def test_ids_with_long_digit_runs_are_not_taken_for_phone_numbers() -> None:
    stream = io.StringIO()
    configure_logging(log_format="json", level="INFO", stream=stream)
    structlog.get_logger("test").error(
        "delivery.failed", delivery_id="0973acf1ab584d1790853852cbc3888e", note="tel 9012345678"
    )
    line = json.loads(stream.getvalue().splitlines()[0])
    assert line["delivery_id"] == "0973acf1ab584d1790853852cbc3888e"
    assert line["note"] == "tel ***5678"
