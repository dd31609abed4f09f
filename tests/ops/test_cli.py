"""`amogate keys ...` and `amogate check` as real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from amogate.amocrm.sandbox.runner import SandboxServer, free_port
from amogate.storage import migrate
from tests.conftest import make_settings
from tests.ops.support import instances

ADMIN_KEY = "test-admin-key-0123456789"
LONG_LIVED = "sandbox-long-lived-token-0123456789"
CONFIG = "/api/v1/diagnostics/config"


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The process environment without the developer's gateway settings, plus ours."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AMO_", "API_KEY", "DATABASE_URL", "CORS_", "METRICS_", "READY_"))
    }
    env.update(
        API_KEY=ADMIN_KEY,
        DATABASE_URL=f"sqlite:///{tmp_path / 'amogate.db'}",
        TOKEN_STORAGE_PATH=str(tmp_path / "tokens.json"),
        ERROR_LOG_PATH=str(tmp_path / "error.log"),
        LOG_ERRORS="false",
        LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


def amogate(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # cwd is the test's folder, so no .env of the developer is read
    return subprocess.run(
        [sys.executable, "-m", "amogate", *args],
        cwd=tmp_path,
        env=clean_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_keys_made_by_the_cli_work_until_revoked_and_are_never_listed(
    tmp_path: Path,
) -> None:
    created = amogate(
        tmp_path,
        "keys",
        "create",
        "shop-site",
        "--scope",
        "admin",
        "--origin",
        "https://shop.uz/",
        "--rate-per-minute",
        "100",
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("amg_")
    assert len(key) == 36
    listed = amogate(tmp_path, "keys", "list")
    assert listed.returncode == 0, listed.stderr
    assert key not in listed.stdout
    row = next(line for line in listed.stdout.splitlines() if line.startswith("shop-site"))
    assert "admin" in row
    assert "https://shop.uz" in row
    assert " 100 " in row
    settings = make_settings(tmp_path)
    async with instances(settings, 1) as (gateway,):
        before = await gateway.get(CONFIG, headers={"X-API-KEY": key})
        revoked = amogate(tmp_path, "keys", "revoke", "shop-site")
        after = await gateway.get(CONFIG, headers={"X-API-KEY": key})
    assert before.status_code == 200
    assert revoked.returncode == 0, revoked.stderr
    assert "Revoked API key 'shop-site'" in revoked.stdout
    assert after.status_code == 401
    relisted = amogate(tmp_path, "keys", "list").stdout
    row = next(line for line in relisted.splitlines() if line.startswith("shop-site"))
    assert row.rstrip().endswith("UTC")
    assert row.count("UTC") == 3  # created, last used, revoked


def test_keys_cli_refuses_unknown_scopes_bad_origins_duplicates_and_unknown_keys(
    tmp_path: Path,
) -> None:
    bad_scope = amogate(tmp_path, "keys", "create", "a", "--scope", "leads:delete")
    bad_origin = amogate(tmp_path, "keys", "create", "a", "--origin", "shop.uz")
    first = amogate(tmp_path, "keys", "create", "a")
    duplicate = amogate(tmp_path, "keys", "create", "a")
    unknown = amogate(tmp_path, "keys", "revoke", "nobody")
    assert (bad_scope.returncode, bad_origin.returncode) == (2, 2)
    assert "unknown scope 'leads:delete'" in bad_scope.stderr
    assert "must look like https://site.uz" in bad_origin.stderr
    assert first.returncode == 0
    assert "scopes: leads:write" in first.stdout
    assert duplicate.returncode == 2
    assert "a key named 'a' already exists" in duplicate.stderr
    assert unknown.returncode == 2
    assert "no API key named 'nobody'" in unknown.stderr


@pytest.mark.slow
def test_check_passes_when_everything_works(tmp_path: Path) -> None:
    with SandboxServer(rate_limit=0, long_lived_token=LONG_LIVED) as sandbox:
        env = {"AMO_BASE_URL": sandbox.url, "AMO_LONG_LIVED_TOKEN": LONG_LIVED}
        assert amogate(tmp_path, "db", "upgrade", **env).returncode == 0
        result = amogate(tmp_path, "check", **env)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "ok   config",
        "ok   database",
        "ok   migrations",
        "ok   token",
        "ok   amocrm",
    ]
    assert LONG_LIVED not in result.stdout + result.stderr


@pytest.mark.slow
def test_check_fails_with_a_reason_when_amocrm_is_unreachable(tmp_path: Path) -> None:
    env = {
        "AMO_BASE_URL": f"http://127.0.0.1:{free_port()}",
        "AMO_LONG_LIVED_TOKEN": LONG_LIVED,
    }
    assert amogate(tmp_path, "db", "upgrade", **env).returncode == 0
    result = amogate(tmp_path, "check", **env)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[3].startswith("ok   token")
    assert lines[4].startswith("FAIL amocrm: GET account: ")
    assert LONG_LIVED not in result.stdout + result.stderr


def test_check_fails_when_the_schema_is_missing_or_the_config_is_bad(tmp_path: Path) -> None:
    fresh = amogate(tmp_path, "check", AMO_BASE_URL="http://127.0.0.1:9")
    bad_config = amogate(tmp_path, "check", API_KEY="tiny-key")
    assert fresh.returncode == 1
    expected = migrate.head_revision()
    assert f"FAIL migrations: schema at nothing, expected {expected}" in fresh.stdout
    assert "FAIL token: skipped: the schema is not up to date" in fresh.stdout
    assert bad_config.returncode == 1
    assert bad_config.stdout.startswith("FAIL config: API_KEY")
    assert "tiny-key" not in bad_config.stdout + bad_config.stderr
