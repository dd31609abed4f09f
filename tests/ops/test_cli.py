"""`amogate keys ...` and `amogate check` as real processes."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from amogate.amocrm.sandbox.runner import SandboxServer, free_port
from amogate.storage import migrate
from tests.conftest import make_settings
from tests.ops.support import instances
from tests.support.processes import wait_for_http

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
def test_check_asks_whether_an_unreachable_amocrm_can_be_reached(tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{free_port()}"
    env = {"AMO_BASE_URL": base, "AMO_LONG_LIVED_TOKEN": LONG_LIVED}
    assert amogate(tmp_path, "db", "upgrade", **env).returncode == 0
    result = amogate(tmp_path, "check", **env)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[3].startswith("ok   token")
    assert lines[4] == f"FAIL amocrm: cannot connect to {base}: is {base} reachable from this host?"
    assert not re.search(r"\b[A-Z]\w+(Error|Exception)\b", result.stdout + result.stderr)
    assert LONG_LIVED not in result.stdout + result.stderr


def test_check_on_a_fresh_sqlite_folder_creates_nothing_and_says_serve_will(
    tmp_path: Path,
) -> None:
    database = tmp_path / "fresh" / "amogate.db"
    fresh = amogate(
        tmp_path, "check", AMO_BASE_URL="http://127.0.0.1:9", DATABASE_URL=f"sqlite:///{database}"
    )
    assert fresh.returncode == 1
    lines = fresh.stdout.splitlines()
    assert lines[1] == (f"ok   database: {database} does not exist yet: `amogate serve` creates it")
    assert lines[2] == "ok   migrations: `amogate serve` creates the schema"
    assert lines[3].startswith("FAIL token: skipped: no database yet")
    assert not database.exists()
    assert not database.parent.exists()


def test_check_says_serve_migrates_an_older_sqlite_schema(tmp_path: Path) -> None:

    database = tmp_path / "old.db"
    empty = sqlite3.connect(database)
    empty.execute("CREATE TABLE unrelated (id INTEGER)")
    empty.close()
    result = amogate(
        tmp_path, "check", AMO_BASE_URL="http://127.0.0.1:9", DATABASE_URL=f"sqlite:///{database}"
    )
    head = migrate.head_revision()
    assert f"ok   migrations: at nothing: `amogate serve` migrates it to {head} at start" in (
        result.stdout
    )
    assert "FAIL token: skipped: no schema yet" in result.stdout


@pytest.mark.postgres
def test_check_asks_for_db_upgrade_on_an_older_postgresql_schema(
    tmp_path: Path, postgres_url: str
) -> None:
    result = amogate(
        tmp_path, "check", AMO_BASE_URL="http://127.0.0.1:9", DATABASE_URL=postgres_url
    )
    assert result.returncode == 1
    assert "FAIL migrations: schema at nothing, expected" in result.stdout
    assert "run `amogate db upgrade`" in result.stdout
    assert "FAIL token: skipped: the schema is not up to date" in result.stdout


def test_check_names_the_env_file_it_read_or_that_none_was_found(tmp_path: Path) -> None:
    bad_config = amogate(tmp_path, "check", API_KEY="tiny-key")
    assert bad_config.returncode == 1
    assert bad_config.stdout.startswith("FAIL config: API_KEY")
    assert f"no .env in {tmp_path}: run amogate in the folder that holds it" in bad_config.stdout
    assert "tiny-key" not in bad_config.stdout + bad_config.stderr
    (tmp_path / ".env").write_text("AMO_BASE_URL=http://127.0.0.1:9\n")
    with_file = amogate(tmp_path, "check")
    assert with_file.stdout.startswith(
        f"ok   config: settings from {tmp_path / '.env'} and the environment"
    )


def test_check_cannot_reach_postgresql_asks_whether_it_runs(tmp_path: Path) -> None:
    port = free_port()
    url = f"postgresql://amogate:hunter2-secret@127.0.0.1:{port}/gateway"
    result = amogate(tmp_path, "check", AMO_BASE_URL="http://127.0.0.1:9", DATABASE_URL=url)
    assert result.returncode == 1
    line = result.stdout.splitlines()[1]
    assert line.startswith(
        f"FAIL database: cannot reach the PostgreSQL at 127.0.0.1:{port} (database gateway): "
        "is it running and reachable?"
    )
    assert "hunter2-secret" not in result.stdout + result.stderr


@pytest.mark.postgres
def test_serve_on_an_older_postgresql_schema_ends_with_one_line_asking_for_db_upgrade(
    tmp_path: Path, postgres_url: str
) -> None:
    result = amogate(
        tmp_path,
        "serve",
        "--port",
        str(free_port()),
        AMO_BASE_URL="http://127.0.0.1:9",
        DATABASE_URL=postgres_url,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "amogate: the database schema is not up to date: run `amogate db upgrade`"
    )
    assert "Traceback" not in result.stderr


def test_serve_migrates_a_new_sqlite_file_before_it_serves(tmp_path: Path) -> None:
    """The schema step runs in a child process (so the server never holds Alembic); the server
    then answers on the migrated file."""
    database = tmp_path / "fresh.db"
    port = free_port()
    env = clean_env(
        tmp_path, AMO_BASE_URL="http://127.0.0.1:9", DATABASE_URL=f"sqlite:///{database}"
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "amogate", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", process=server)
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
        with sqlite3.connect(database) as db:
            [(revision,)] = db.execute("SELECT version_num FROM alembic_version").fetchall()
        assert revision == migrate.head_revision()
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_the_serving_code_loads_no_alembic() -> None:
    """Alembic (~10 MB of a server's memory) is imported only by the schema step."""
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, amogate.cli, amogate.app, amogate.runtime, amogate.api.front; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"
