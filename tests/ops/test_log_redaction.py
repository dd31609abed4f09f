"""A real gateway connected to the sandbox writes no secret and no full phone number to its
logs, and every request line carries its request id."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from amogate.logging import configure_logging
from amogate.settings import Settings
from tests.support.gateway import connected_gateway

WRONG_KEY = "amg_thisKeyWasNeverIssued0123456789"
PHONE = "+998 90 123-45-67"
PHONE_DIGITS = "998901234567"


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """The gateway's real logging pipeline (JSON, DEBUG) into a buffer; restored afterwards."""
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    configure_logging(log_format="json", level="DEBUG", stream=stream)
    try:
        yield stream
    finally:
        for handler in list(root.handlers):
            if getattr(handler, "_amogate", False):
                root.removeHandler(handler)
        root.setLevel(level)
        structlog.reset_defaults()


async def test_logs_hold_no_token_key_secret_or_full_phone_and_requests_carry_ids(
    settings: Settings, api_headers: dict[str, str], captured_logs: io.StringIO
) -> None:
    secrets: list[str] = [settings.api_key.get_secret_value(), WRONG_KEY, "sandbox-client-secret"]
    async with connected_gateway(settings, background=True, lead_sync_timeout=5.0) as h:
        connected = await h.amo.account_state()
        refreshed = await h.amo.tokens.refresh_now()
        lead = await h.gateway.post(
            "/api/v1/leads/unsorted",
            headers={**api_headers, "X-Request-ID": "lead-req-1"},
            json={
                "lead": {"name": "Order"},
                "contact": {"name": "Ali", "phone": PHONE},
                "comment": f"call me at {PHONE}",
            },
        )
        refused = await h.gateway.get(
            "/api/v1/diagnostics/config", headers={"X-API-KEY": WRONG_KEY}
        )
        info = await h.gateway.get("/api/v1/info/account", headers=api_headers)
    assert connected is not None
    assert refused.status_code == 401
    assert info.status_code == 200
    assert lead.status_code == 200
    for row in (connected, refreshed):
        assert row.access_token
        assert row.refresh_token
        secrets += [row.access_token, row.refresh_token]
    assert connected.access_token != refreshed.access_token

    text = captured_logs.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    events = {line["event"] for line in lines}
    assert {"oauth.connected", "http.request"} <= events
    for secret in secrets:
        assert secret not in text
    assert PHONE_DIGITS not in text
    assert PHONE_DIGITS[:8] not in text.replace(" ", "").replace("-", "")
    requests = [line for line in lines if line["event"] == "http.request"]
    assert len(requests) == 3
    assert all(line.get("request_id") for line in requests)
    assert {line["status"] for line in requests} >= {401, 200}
    assert any(line["request_id"] == "lead-req-1" for line in requests)
    # The lead's delivery, done by the worker outside the request, carries the same id.
    delivered = [line for line in lines if line["event"] == "delivery.delivered"]
    assert [line["request_id"] for line in delivered] == ["lead-req-1"]
    accepted = [line for line in lines if line["event"] == "lead.accepted"]
    assert [line["request_id"] for line in accepted] == ["lead-req-1"]
