"""A form belongs to one amoCRM account: its leads land in that account's amoCRM and nowhere
else; a form for an account that was never added is refused."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.support.accounts import (
    add_and_connect,
    default_settings,
    sandboxes,
    unsorted_source_uids,
)
from tests.support.processes import gateway_env, run_amogate, running_gateway

pytestmark = pytest.mark.slow


def test_a_forms_leads_land_in_its_own_account(tmp_path: Path) -> None:
    with sandboxes(["default", "shop"], rate_limit=0) as boxes:
        settings = default_settings(boxes["default"], f"sqlite:///{tmp_path / 'gw.db'}")
        env = gateway_env(tmp_path, **settings)
        add_and_connect(tmp_path, env, boxes)
        created = run_amogate(tmp_path, env, "forms", "create", "Shop form", "--account", "shop")
        assert created.returncode == 0, created.stderr
        path = next(line for line in created.stdout.splitlines() if line.startswith("/api/"))
        refused = run_amogate(tmp_path, env, "forms", "create", "Nowhere", "--account", "nope")
        assert refused.returncode != 0
        assert "no account named 'nope'" in refused.stdout + refused.stderr

        with running_gateway(tmp_path, environment=settings) as url:
            answer = httpx.post(
                url + path, data={"name": "Do'kon mijozi", "phone": "+998901234567"}, timeout=10
            )
            assert answer.status_code == 200, answer.text
            delivery_id = answer.json()["data"]["delivery_id"]
            for _ in range(150):
                if unsorted_source_uids(boxes["shop"]):
                    break
                time.sleep(0.2)
            landed = {name: unsorted_source_uids(box) for name, box in boxes.items()}

    assert landed == {"default": [], "shop": [delivery_id]}
