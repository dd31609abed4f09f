"""Typed accessors for what the lifespan put on `app.state`."""

from __future__ import annotations

from fastapi import Request

from amogate.connection.service import AmoConnection
from amogate.errors import ServiceUnavailable
from amogate.settings import Settings
from amogate.storage.db import Database
from amogate.web.render import Pages


def settings_of(request: Request) -> Settings:
    settings = request.app.state.settings
    assert isinstance(settings, Settings)
    return settings


def database_of(request: Request) -> Database:
    database = request.app.state.database
    assert isinstance(database, Database)
    return database


def amo_of(request: Request) -> AmoConnection:
    amo = getattr(request.app.state, "amo", None)
    if amo is None:
        raise ServiceUnavailable("amoCRM is not configured: set AMO_DOMAIN (or AMO_BASE_URL)")
    assert isinstance(amo, AmoConnection)
    return amo


def pages_of(request: Request) -> Pages:
    """The admin page's templates (the OAuth callback answers in its style)."""
    pages = request.app.state.admin.pages
    assert isinstance(pages, Pages)
    return pages
