"""Three amoCRM accounts (`default`, `b`, `c`) in one gateway, each its own sandbox process:
a lead sent with a key lands only in that key's account, info answers come from the key's
account, the admin key acts on the account named in `X-Amo-Account`, and another account's
key may not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import TEST_API_KEY
from tests.support.accounts import (
    add_and_connect,
    create_key,
    default_settings,
    sandboxes,
    unsorted_source_uids,
)
from tests.support.processes import gateway_env, running_gateway

pytestmark = pytest.mark.slow

ACCOUNTS = ["default", "b", "c"]
ADMIN = {"X-API-KEY": TEST_API_KEY}


def lead(name: str) -> dict[str, Any]:
    return {"lead": {"name": name}, "contact": {"name": "Client", "phone": "+998901234567"}}


def send(http: httpx.Client, headers: dict[str, str], name: str) -> str:
    answer = http.post("/api/v1/leads/unsorted", json=lead(name), headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["status"] == "delivered"
    return str(answer.json()["data"]["delivery_id"])


def test_each_key_acts_on_its_own_account_and_the_admin_on_the_one_it_names(
    tmp_path: Path,
) -> None:
    with sandboxes(ACCOUNTS, rate_limit=0) as boxes:
        settings = default_settings(boxes["default"], f"sqlite:///{tmp_path / 'gw.db'}")
        env = gateway_env(tmp_path, **settings)
        add_and_connect(tmp_path, env, boxes)
        keys = {name: create_key(tmp_path, env, f"site-{name}", name) for name in ACCOUNTS}
        with (
            running_gateway(tmp_path, environment=settings) as url,
            httpx.Client(base_url=url, timeout=30) as http,
        ):
            sent = {name: [send(http, {"X-API-KEY": keys[name]}, f"to {name}")] for name in keys}
            # The admin key acts on `default`, or on the account it names.
            sent["default"].append(send(http, ADMIN, "admin to default"))
            sent["b"].append(send(http, {**ADMIN, "X-Amo-Account": "b"}, "admin to b"))
            # A key may name its own account.
            sent["c"].append(send(http, {"X-API-KEY": keys["c"], "X-Amo-Account": "c"}, "c"))

            subdomains = {
                name: http.get("/api/v1/info/account", headers={"X-API-KEY": keys[name]}).json()[
                    "data"
                ]["subdomain"]
                for name in keys
            }
            as_admin = http.get("/api/v1/info/account", headers={**ADMIN, "X-Amo-Account": "b"})
            other = http.post(
                "/api/v1/leads/unsorted",
                json=lead("b's key naming c"),
                headers={"X-API-KEY": keys["b"], "X-Amo-Account": "c"},
            )
            unknown = http.get("/api/v1/info/pipelines", headers={**ADMIN, "X-Amo-Account": "nope"})
            status_b = http.get("/oauth/status", params={"account": "b"}).json()["data"]

        landed = {name: unsorted_source_uids(box) for name, box in boxes.items()}

    for name in ACCOUNTS:
        assert sorted(landed[name]) == sorted(sent[name]), name
    assert subdomains == {name: f"acct-{name}" for name in ACCOUNTS}
    assert as_admin.json()["data"]["subdomain"] == "acct-b"
    assert other.status_code == 403
    assert other.json()["success"] is False
    assert unknown.status_code == 404
    assert unknown.json() == {"success": False, "error": "Account not found: nope"}
    assert status_b["has_token"] is True
