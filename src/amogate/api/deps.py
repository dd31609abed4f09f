"""Typed dependencies for routes: the app's state, the running gateway, the account a call
acts on. Nothing here looks anything up by name on `app.state`."""

from __future__ import annotations

from fastapi import Request

from amogate.access.keys import Principal
from amogate.accounts.config import DEFAULT, InvalidAccountName, check_name
from amogate.app_state import AppState, state_of
from amogate.connection.service import AmoConnection
from amogate.errors import NotFound, ServiceUnavailable
from amogate.runtime import Account, AccountNotFound, Gateway
from amogate.settings import Settings
from amogate.storage.db import Database
from amogate.web.render import Pages

NOT_CONFIGURED = "amoCRM is not configured: set AMO_DOMAIN (or AMO_BASE_URL)"


def app_state(request: Request) -> AppState:
    return state_of(request.app)


def settings_of(request: Request) -> Settings:
    return app_state(request).settings


def gateway_of(request: Request) -> Gateway:
    return app_state(request).running()


def database_of(request: Request) -> Database:
    return gateway_of(request).database


def default_account(request: Request) -> Account:
    """The `.env` account; 503 when amoCRM is not configured."""
    account = gateway_of(request).default
    if account is None:
        raise ServiceUnavailable(NOT_CONFIGURED)
    return account


def amo_of(request: Request) -> AmoConnection:
    return default_account(request).amo


async def named_account(request: Request, name: str) -> Account:
    """The running account `name`; 404 `Account not found: NAME` when there is none (and
    the usual 503 for `default` when amoCRM is not configured)."""
    try:
        check_name(name)  # a name that cannot exist is not looked up
        return await gateway_of(request).account(name)
    except (AccountNotFound, InvalidAccountName):
        if name == DEFAULT:
            raise ServiceUnavailable(NOT_CONFIGURED) from None
        raise NotFound(f"Account not found: {name[:64]}") from None


async def account_of(request: Request, principal: Principal) -> Account:
    """The account a key's call acts on (its own, or the admin's `X-Amo-Account`)."""
    return await named_account(request, principal.account)


def pages_of(request: Request) -> Pages:
    """The admin page's templates (the OAuth callback answers in its style)."""
    pages = request.app.state.admin.pages
    assert isinstance(pages, Pages)
    return pages
