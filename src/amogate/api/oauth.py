"""The OAuth2 flow in the browser: /oauth/authorize → amoCRM consent → /oauth/callback.

Connecting amoCRM is an admin action (whoever connects the gateway receives every lead):
/oauth/authorize needs the admin session (the admin page's Connect button) or an admin-scope
X-API-KEY, and hands the browser an HttpOnly `SameSite=Lax` cookie bound to the new `state`
(Lax: amoCRM's redirect back is a cross-site top-level navigation, which must carry it). The
callback refuses a browser state that comes without that cookie; see `connection.connect` for
the rest of its checks.
"""

from __future__ import annotations

import time
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from amogate.access.admin import AdminAccess
from amogate.access.sessions import SESSION_COOKIE
from amogate.accounts.config import DEFAULT
from amogate.api import envelope
from amogate.api.auth import current_principal
from amogate.api.deps import (
    app_state,
    database_of,
    gateway_of,
    named_account,
    pages_of,
    settings_of,
)
from amogate.connection import advice, connect
from amogate.errors import AuthenticationFailed
from amogate.web.state_cookie import STATE_COOKIE, set_state_cookie

router = APIRouter(prefix="/oauth", tags=["oauth"])

CONNECT_PATH = "/oauth/authorize"
REPLACE_PATH = "/admin/replace-account"


AccountQuery = Annotated[
    str, Query(max_length=64, description="The gateway's account name (default `default`).")
]


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _is_browser(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _page(
    request: Request,
    title: str,
    text: str,
    *,
    status: int,
    ok: bool,
    action: tuple[str, str] | None = None,
) -> HTMLResponse:
    """The callback's answer to a person: styled like the admin page, in the admin's language
    (English texts are translated when the catalogue knows them)."""
    admin = settings_of(request).admin_enabled
    return pages_of(request).message(
        request, title, text, status=status, ok=ok, admin=admin, action=action
    )


def admin_access_of(request: Request) -> AdminAccess:
    access = app_state(request).admin_access
    assert isinstance(access, AdminAccess)
    return access


async def _signed_in_admin(request: Request) -> bool:
    access = admin_access_of(request)
    if not access.enabled:
        return False
    cookie = request.cookies.get(SESSION_COOKIE)
    return cookie is not None and await access.session_of(cookie, now=time.time()) is not None


@router.get(
    "/authorize",
    summary="Start connecting amoCRM (admin only; redirects to its consent page)",
    responses={
        302: {"description": "To amoCRM's consent page, with the state cookie"},
        303: {"description": "A browser without an admin session: to /admin/login"},
        400: {"description": "The integration's credentials (named) are not configured"},
        401: {"description": "Neither an admin session nor an admin X-API-KEY"},
    },
)
async def authorize(request: Request, account: AccountQuery = DEFAULT) -> Response:
    if request.headers.get("x-api-key") is not None:
        principal = await current_principal(request)  # 401 for a wrong key
        principal.require("admin")  # 403 for a key without the admin scope
    elif not await _signed_in_admin(request):
        if _is_browser(request):
            target = "/admin/login?" + urlencode({"next": CONNECT_PATH})
            return RedirectResponse(target, status_code=303)
        raise AuthenticationFailed()
    if account == DEFAULT and gateway_of(request).default is None:
        return envelope.error(400, "amoCRM is not configured: set AMO_DOMAIN (or AMO_BASE_URL)")
    amo = (await named_account(request, account)).amo  # the state remembers the account
    try:
        consent = await connect.start_consent(amo, browser=True)
    except connect.ConnectError as exc:
        return envelope.error(exc.status, exc.message)
    response = RedirectResponse(consent.url, status_code=302)
    assert consent.browser_cookie is not None
    set_state_cookie(response, consent.browser_cookie, secure=request.url.scheme == "https")
    return response


@router.get("/callback", summary="amoCRM redirects here after consent")
async def callback(
    request: Request,
    code: str | None = None,
    state: str | None = None,
    referer: str | None = None,
    error: str | None = None,
) -> Response:
    admin = settings_of(request).admin_enabled
    try:
        # The account the connection was started for (`default` for an unknown state, which
        # is then refused like any other unknown state).
        account = await named_account(
            request, await connect.state_account(database_of(request), state)
        )
        amo = account.amo
        grant = await connect.consume_state(amo, state, request.cookies.get(STATE_COOKIE))
        if error:
            raise connect.ConnectError(
                advice.ACCESS_DENIED if error == "access_denied" else advice.AMOCRM_REFUSED
            )
        replace = grant.replace_account
        host = await connect.account_host(amo, referer, replace_account=replace)
        connected = await connect.exchange(amo, code or "", host, replace_account=replace)
    except connect.ConnectError as exc:
        if _wants_json(request):
            return envelope.error(exc.status, exc.message, exc.details)
        action = None
        if exc.status == 409 and admin:
            action = (REPLACE_PATH, "callback.replace")
        return _page(
            request,
            "amoCRM was not connected",
            exc.message,
            status=exc.status,
            ok=False,
            action=action,
        )
    account.info.invalidate()  # a (re)connected account may be another one: forget its lists
    data = {
        "account": account.name,
        "base_domain": connected.base_domain,
        "account_name": connected.account_name,
        "account_id": connected.account_id,
    }
    response: Response
    if _wants_json(request):
        response = envelope.success("amoCRM connected", data)
    else:
        name = connected.account_name or connected.base_domain
        response = _page(
            request,
            "amoCRM connected",
            f"amogate is now connected to {name}. Leads will be delivered there; you can close "
            "this page.",
            status=200,
            ok=True,
        )
    response.delete_cookie(STATE_COOKIE, path="/", httponly=True, samesite="lax")
    return response


@router.get("/status", summary="Is amoCRM connected? (never shows a token)")
async def status(request: Request, account: AccountQuery = DEFAULT) -> JSONResponse:
    running = gateway_of(request).accounts.get(account)
    if running is None and account != DEFAULT:
        running = await named_account(request, account)  # 404 for an unknown account
    amo = running.amo if running is not None else None
    row = await amo.account_state() if amo is not None else None
    data = connect.describe(row)
    data["configured"] = amo is not None
    message = "Token is valid" if data["status"] == "authorized" else "Not authorized"
    return envelope.success(message, data)
