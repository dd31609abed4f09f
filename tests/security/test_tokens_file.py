"""The original gateway's tokens.json is imported at start — unless it names another account
than the one the gateway is set up for: the first refresh would send our client secret there,
and every lead would follow."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.security.support import deployment

pytestmark = pytest.mark.slow

DOMAIN = "mycompany.amocrm.ru"


def _tokens_file(folder: Path, base_domain: str) -> None:
    (folder / "tokens.json").write_text(
        json.dumps(
            {
                "access_token": "imported-access-token-0123456789",
                "refresh_token": "def50200importedrefreshtoken0123456789abcdef",
                "expires_at": 4_102_444_800,
                "base_domain": base_domain,
            }
        )
    )


def _refusals(log: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return [line for line in lines if line["event"] == "oauth.tokens_file.refused"]


def test_a_tokens_file_for_another_account_is_not_imported(tmp_path: Path) -> None:
    _tokens_file(tmp_path, "attacker.amocrm.ru")
    with deployment(tmp_path, AMO_DOMAIN=DOMAIN) as d:
        status = httpx.get(f"{d.url}/oauth/status").json()["data"]
        stored = d.tokens()
        refusals = _refusals(d.log)

    assert status["has_token"] is False
    assert stored == (None, None, None, None)
    assert len(refusals) == 1
    assert refusals[0]["base_domain"] == "attacker.amocrm.ru"
    assert "AMO_DOMAIN" in str(refusals[0]["reason"])
    assert "imported-access-token" not in d.log
    assert "def50200imported" not in d.log


def test_a_tokens_file_for_the_configured_account_is_imported(tmp_path: Path) -> None:
    _tokens_file(tmp_path, DOMAIN)
    with deployment(tmp_path, AMO_DOMAIN=DOMAIN) as d:
        status = httpx.get(f"{d.url}/oauth/status").json()["data"]
        refusals = _refusals(d.log)

    assert status["has_token"] is True
    assert status["base_domain"] == DOMAIN
    assert refusals == []
