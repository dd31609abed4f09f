"""Fixtures for the admin page: the gateway app with ADMIN_PASSWORD, and a signed-in client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI

from amogate.app import create_app
from amogate.settings import Settings
from amogate.web.routes import AdminSite
from tests.conftest import open_app
from tests.web.helpers import ADMIN_PASSWORD, sign_in


@pytest.fixture
def admin_settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(admin_password=ADMIN_PASSWORD)


@pytest.fixture
def admin_app(admin_settings: Settings) -> FastAPI:
    return create_app(admin_settings)


@pytest.fixture
def admin_site(admin_app: FastAPI) -> AdminSite:
    """The app's admin state; tests move its clock."""
    site = admin_app.state.admin
    assert isinstance(site, AdminSite)
    return site


@pytest.fixture
async def admin_client(admin_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async for client in open_app(admin_app):
        yield client


@pytest.fixture
async def signed_in(admin_client: httpx.AsyncClient) -> httpx.AsyncClient:
    response = await sign_in(admin_client)
    assert response.status_code == 303
    return admin_client
