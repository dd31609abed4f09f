"""Shared fixtures: settings built explicitly (never from the developer's environment), the app
over real HTTP (httpx ASGITransport with the lifespan running), and database backends.

Storage tests run on SQLite and on PostgreSQL through the `database_url` fixture. PostgreSQL is
taken from AMOGATE_TEST_POSTGRES (default postgresql://postgres@127.0.0.1:5432/postgres); when no
server answers, those tests are skipped with the reason printed — except under CI=true, where a
missing server is an error, so CI can never pass without them. Under CI every other skip is an
error too (see tests/support/ci.py), and the run ends with a line counting the skipped tests.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from amogate.app import create_app
from amogate.settings import Settings
from tests.support.ci import unavailable, under_ci

TEST_API_KEY = "test-admin-key-0123456789"
POSTGRES_ADMIN_URL = os.environ.get(
    "AMOGATE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "api_key": TEST_API_KEY,
        "database_url": f"sqlite:///{tmp_path / 'amogate.db'}",
        "token_storage_path": tmp_path / "tokens.json",
        "error_log_path": tmp_path / "error.log",
        "log_errors": False,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def settings_factory(tmp_path: Path) -> Callable[..., Settings]:
    def factory(**overrides: Any) -> Settings:
        return make_settings(tmp_path, **overrides)

    return factory


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory()


async def open_app(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and yield a client talking to it over HTTP semantics."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as c:
            yield c


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for c in open_app(create_app(settings)):
        yield c


@pytest.fixture
def api_headers() -> dict[str, str]:
    return {"X-API-KEY": TEST_API_KEY}


# --- no silent skip under CI ----------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Under CI a skipped test is a failed one, whatever skipped it (a marker, a fixture,
    `pytest.skip` in the test); an expected failure (xfail) is not a skip."""
    report = yield
    if under_ci() and report.skipped and not hasattr(report, "wasxfail"):
        _fail_skip(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    """Under CI a test module that skips itself at import fails instead."""
    report = yield
    if under_ci() and report.skipped:
        _fail_skip(report)
    return report


def _fail_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
    report.outcome = "failed"
    report.longrepr = f"{reason} (CI=true: this test must run, not be skipped)"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line CI's log can be read by: whether CI=true held and how many tests skipped."""
    skipped = len(terminalreporter.stats.get("skipped", []))
    ci = "CI=true" if under_ci() else "CI unset"
    terminalreporter.write_line(f"{ci}: {skipped} skipped")


# --- database backends ----------------------------------------------------------------------


def _postgres_reachable() -> str | None:
    """None when reachable, else the reason."""
    import asyncpg

    async def probe() -> None:
        conn = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
    except Exception as exc:
        return f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {type(exc).__name__}"
    return None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session; its URL."""
    reason = _postgres_reachable()
    if reason is not None:
        unavailable(reason)
    import asyncpg

    name = f"amogate_test_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """The session database, emptied before each test that uses it."""
    import asyncpg

    async def clean() -> None:
        conn = await asyncpg.connect(postgres_server)
        try:
            await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
        finally:
            await conn.close()

    asyncio.run(clean())
    return postgres_server


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url = request.getfixturevalue("postgres_url")
    assert isinstance(url, str)
    return url
