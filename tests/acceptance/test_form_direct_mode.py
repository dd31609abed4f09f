"""A public form made with `amogate forms create --mode lead`: its posts become leads straight in
the pipeline's first stage, and a returning visitor's post goes to the contact amoCRM already
has — real gateway and sandbox processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from amogate.amocrm.sandbox.seed import MAIN_PIPELINE_ID
from tests.forms.support import amo_get, create_form, wait_delivered
from tests.security.support import Deployment, deployment

UNSORTED_STAGE = 71_000_011  # the main pipeline's Unsorted


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Deployment]:
    with deployment(tmp_path) as d:
        assert d.connect().status_code == 200
        yield d


def post(endpoint: str, name: str, phone: str) -> str:
    answer = httpx.post(endpoint, data={"Name": name, "Phone": phone}, timeout=10)
    assert answer.status_code == 200, answer.text
    delivery_id: str = answer.json()["data"]["delivery_id"]
    return delivery_id


def test_a_direct_forms_leads_skip_unsorted_and_a_returning_visitor_keeps_one_contact(
    gateway: Deployment,
) -> None:
    endpoint = create_form(
        gateway, "Callback", "--mode", "lead", "--pipeline-id", str(MAIN_PIPELINE_ID)
    )
    first = wait_delivered(gateway, post(endpoint, "Dilnoza", "+998 (90) 765-43-21"))
    again = wait_delivered(gateway, post(endpoint, "Dilnoza K.", "90 765 43 21"))
    leads = [amo_get(gateway, f"/api/v4/leads/{d['amocrm']['lead_id']}") for d in (first, again)]
    contact = amo_get(gateway, f"/api/v4/contacts/{first['amocrm']['contact_id']}")
    assert [lead["pipeline_id"] for lead in leads] == [MAIN_PIPELINE_ID] * 2
    assert UNSORTED_STAGE not in {lead["status_id"] for lead in leads}
    assert amo_get(gateway, "/api/v4/leads/unsorted") is None  # nothing went through Unsorted
    assert again["amocrm"]["contact_id"] == first["amocrm"]["contact_id"]
    assert (first["amocrm"]["contact_matched"], again["amocrm"]["contact_matched"]) == (
        False,
        True,
    )
    assert contact["name"] == "Dilnoza"  # the returning visitor's new spelling changed nothing
