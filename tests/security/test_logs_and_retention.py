"""What a gateway keeps about people: its log lines (request ids intact, no email, no phone,
no SQL parameters even when a database write fails), `error.log` across logrotate and its size
bound, and a delivered lead's personal data erased after the retention period."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.security.support import LEAD, Deployment, deployment, wait_until

pytestmark = pytest.mark.slow

EMAIL = "alisher@example.uz"
PHONE_DIGITS = "998901234567"
# Digits glued to letters and dashes: an id, not a phone (the old redaction mangled these).
REQUEST_ID = "form-20261126-4815162342"
RECENT_LEAD = {
    "lead": {"name": "Boshqa lid"},
    "contact": {"name": "Bobur", "phone": "+998935550000", "email": "bobur@example.uz"},
    "comment": "Yangi so'rov",
}


def _break_lead_storage(d: Deployment) -> None:
    """Make every new lead's INSERT fail inside the database, as a full or broken disk would:
    the error SQLAlchemy raises then carries the statement (and, unless hidden, its values)."""
    d.execute(
        "CREATE TRIGGER refuse_leads BEFORE INSERT ON deliveries "
        "BEGIN SELECT RAISE(ABORT, 'disk refused the lead'); END"
    )


def _lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_a_failed_write_logs_the_request_id_intact_and_no_email_or_phone(
    tmp_path: Path,
) -> None:
    with deployment(tmp_path) as d:
        assert d.connect().status_code == 200
        _break_lead_storage(d)

        response = d.send_lead(LEAD, **{"X-Request-ID": REQUEST_ID})
        log, errors = d.log, d.error_log.read_text()

    assert response.status_code == 500
    assert response.json() == {"success": False, "error": "An unexpected error occurred"}
    assert response.headers["x-request-id"] == REQUEST_ID
    failures = [line for line in _lines(errors) if line["event"] == "request.unexpected_error"]
    assert len(failures) == 1
    assert failures[0]["request_id"] == REQUEST_ID
    assert "disk refused the lead" in str(failures[0]["exception"])
    assert "SQL parameters hidden" in str(failures[0]["exception"])
    requests = [line for line in _lines(log) if line["event"] == "http.request"]
    assert REQUEST_ID in {line["request_id"] for line in requests}
    for text in (log, errors):
        assert EMAIL not in text
        assert "Alisher Navoi" not in text
        assert PHONE_DIGITS not in text.replace(" ", "").replace("-", "")


def test_error_log_survives_logrotate_and_stays_bounded(tmp_path: Path) -> None:
    with deployment(tmp_path, ERROR_LOG_MAX_BYTES="8192") as d:
        assert d.connect().status_code == 200
        _break_lead_storage(d)
        assert d.send_lead(LEAD).status_code == 500
        rotated = d.error_log.with_name("error.log.1")
        d.error_log.rename(rotated)  # what logrotate does (without copytruncate)

        assert d.send_lead(LEAD).status_code == 500
        assert d.error_log.exists()
        assert len(_lines(d.error_log.read_text())) == 1
        assert len(_lines(rotated.read_text())) == 1

        for _ in range(12):
            assert d.send_lead(LEAD).status_code == 500
        sizes = [d.error_log.stat().st_size, rotated.stat().st_size]
        largest_line = max(len(line) + 1 for line in d.error_log.read_text().splitlines())

    assert sizes[0] <= 8192 + largest_line
    assert sizes[1] <= 8192 + largest_line
    assert len(list(tmp_path.glob("error.log*"))) == 2


def test_an_old_delivered_lead_has_no_personal_data_left(tmp_path: Path) -> None:
    with deployment(tmp_path, DATA_RETENTION_DAYS="1", PURGE_INTERVAL_SECONDS="1") as d:
        assert d.connect().status_code == 200
        old, recent = d.send_lead(LEAD), d.send_lead(RECENT_LEAD)
        assert old.status_code == recent.status_code == 200
        old_id, recent_id = old.json()["data"]["delivery_id"], recent.json()["data"]["delivery_id"]
        d.execute(
            "UPDATE deliveries SET delivered_at = datetime('now', '-2 days') WHERE id = ?", old_id
        )
        wait_until(
            lambda: d.rows("SELECT erased_at FROM deliveries WHERE id = ?", old_id)[0][0],
            what="the retention purge",
        )
        row = d.rows(
            "SELECT status, payload, lead_name, contact_name, error_details, amo_lead_id "
            "FROM deliveries WHERE id = ?",
            old_id,
        )[0]
        details = d.rows("SELECT detail FROM delivery_attempts WHERE delivery_id = ?", old_id)
        outcomes = d.rows("SELECT outcome FROM delivery_attempts WHERE delivery_id = ?", old_id)
        kept = d.rows("SELECT payload FROM deliveries WHERE id = ?", recent_id)[0][0]
        api = httpx.get(
            f"{d.url}/api/v1/leads/deliveries/{old_id}",
            headers={"X-API-KEY": "test-admin-key-0123456789"},
        )
        files = b"".join(p.read_bytes() for p in tmp_path.glob("gateway.db*"))

    status, payload, lead_name, contact_name, error_details, amo_lead_id = row
    assert status == "delivered"
    assert amo_lead_id is not None  # the row and its amoCRM ids stay for the counts
    assert json.loads(payload) == {}
    assert (lead_name, contact_name) == ("", "")
    assert json.loads(error_details or "null") is None
    assert all(detail is None for (detail,) in details)
    assert {outcome for (outcome,) in outcomes} == {"ok"}
    assert api.json()["data"]["status"] == "delivered"
    assert api.json()["data"]["personal_data_erased_at"] is not None
    assert "bobur@example.uz" in kept  # a lead within the retention period keeps its data
    # Nothing of the old lead is left in the database's files either (secure delete, and the
    # write-ahead log emptied after the purge).
    for trace in (EMAIL, "Alisher Navoi", "Yangi mijoz", "Mijoz maxsulot haqida", PHONE_DIGITS):
        assert trace.encode() not in files, trace
