"""No token, key, secret or full phone number reaches a log line."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

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


def _scrubbed(**fields: object) -> dict[str, object]:
    stream = io.StringIO()
    configure_logging(log_format="json", level="INFO", stream=stream)
    structlog.get_logger("test").info("probe", **fields)
    line: dict[str, object] = json.loads(stream.getvalue().splitlines()[-1])
    return line


def test_ids_request_ids_addresses_ports_urls_and_dates_stay_greppable() -> None:
    kept = {
        "request_id": "form-20261126-4815162342",
        "uuid": "2f1e7c2a-1234-5678-9012-345678901234",
        "delivery_id": "0f3a9c7e12345678901234567890abcd",
        "upstream": "http://127.0.0.1:40123/api/v4/leads/12345678?page=2",
        "address": "192.168.100.200:9095",
        "note": "lead 31234567 created for account 29999999 at 2026-11-26 12:46:44",
        "query": "id=12345678901&x=1",
    }
    line = _scrubbed(**kept)
    for key, value in kept.items():
        assert line[key] == value, key


def test_phones_in_text_are_masked_in_every_common_shape() -> None:
    line = _scrubbed(
        note="call +998 90 123 45 67, 8 (901) 234-56-78 or 90 123-45-99; tel:+998901234555 "
        "or 998901234544",
    )
    note = str(line["note"])
    for digits in ("90 123 45 67", "901) 234-56", "90 123-45", "99890123", "998901234544"):
        assert digits not in note, digits
    assert note.count("***") == 5


def test_emails_are_masked_in_fields_and_in_text() -> None:
    line = _scrubbed(
        email="alisher.navoi@example.uz",
        contact={"emails": ["bobur@mail.ru"]},
        note='{"email": "jasur@example.uz"} and write to dilnoza@sub.example.com.',
    )
    text = json.dumps(line)
    for address in ("alisher.navoi@", "bobur@", "jasur@", "dilnoza@"):
        assert address not in text, address
    assert line["email"] == "a***@example.uz"
    assert "d***@sub.example.com" in str(line["note"])


def test_error_log_is_reopened_after_logrotate_and_bounded(tmp_path: Path) -> None:
    error_log = tmp_path / "error.log"
    configure_logging(
        log_format="json", stream=io.StringIO(), error_log_path=error_log, error_log_max_bytes=4096
    )
    log = structlog.get_logger("test")
    log.error("first")
    error_log.rename(tmp_path / "moved-by-logrotate.log")
    log.error("second")
    assert [json.loads(x)["event"] for x in error_log.read_text().splitlines()] == ["second"]
    for n in range(200):
        log.error("filler", n=n, text="x" * 100)
    sizes = [error_log.stat().st_size, (tmp_path / "error.log.1").stat().st_size]
    assert all(size <= 4096 + 300 for size in sizes)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "error.log",
        "error.log.1",
        "moved-by-logrotate.log",
    ]
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_amogate", False):
            root.removeHandler(handler)
            handler.close()
