"""`tail -f storage/error.log` (the original gateway's advice) shows what the operator must act
on: a lead whose delivery ended `failed`, and an account that needs reauthorization."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from amogate.amocrm.errors import AmoAuthError
from amogate.app_state import state_of
from amogate.logging import configure_logging
from amogate.settings import Settings
from amogate.storage import deliveries as store
from tests.leads.helpers import URL, simple_lead
from tests.support.gateway import connected_gateway


@pytest.fixture
def error_log(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "storage" / "error.log"
    configure_logging(log_format="json", level="INFO", error_log_path=path)
    yield path
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.close()
    configure_logging(log_format="json", level="INFO")


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def lines(path: Path) -> list[dict[str, Any]]:
    for handler in logging.getLogger().handlers:
        handler.flush()
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def test_a_failed_delivery_is_one_error_line_naming_it(
    settings: Settings, api_headers: dict[str, str], error_log: Path
) -> None:
    async with connected_gateway(
        settings, background=True, lead_sync_timeout=5.0, delivery_retry_base_seconds=0.2
    ) as h:
        delivered = await h.gateway.post(URL, json=simple_lead(1), headers=api_headers)
        assert delivered.status_code == 200
        assert lines(error_log) == []  # a delivered lead is nothing to act on
        await h.fault("400", 60, path_prefix="/api/v4/leads/unsorted/forms")
        refused = await h.gateway.post(URL, json=simple_lead(2), headers=api_headers)
        assert refused.status_code == 422
        async with state_of(h.app).running().database.read() as conn:
            [failed] = await store.list_deliveries(conn, status=store.FAILED)
    [line] = lines(error_log)
    assert line["level"] == "error"
    assert line["event"] == "delivery.failed"
    assert line["reason"] == "amoCRM rejected the lead"
    assert line["status"] == 400
    assert line["step"] == "form"
    assert line["delivery_id"] == failed.id
    assert line["timestamp"]
    text = await asyncio.to_thread(read, error_log)
    assert "+99890" not in text  # no phone number of the lead


async def test_an_account_that_needs_reauthorization_is_an_error_line_saying_what_to_do(
    settings: Settings, error_log: Path
) -> None:
    async with connected_gateway(settings) as h:
        await h.sandbox.post("/_sandbox/reset", json={"tokens": True})  # amoCRM forgot the pair
        with pytest.raises(AmoAuthError):
            await h.amo.tokens.refresh_now(reason="keeper")
        row = await h.amo.tokens.status()
    assert row is not None
    [line] = lines(error_log)
    assert line["level"] == "error"
    assert line["event"] == "account.needs_reauthorization"
    assert line["account"] == "default"
    assert "amogate auth url" in line["action"]
    assert str(row.refresh_token) not in await asyncio.to_thread(read, error_log)
