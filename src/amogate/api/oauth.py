"""The OAuth2 flow in the browser: /oauth/authorize → amoCRM consent → /oauth/callback."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from amogate.api import envelope
from amogate.api.deps import amo_of, pages_of, settings_of
from amogate.connection import advice, connect

router = APIRouter(prefix="/oauth", tags=["oauth"])


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _page(request: Request, title: str, text: str, *, status: int, ok: bool) -> HTMLResponse:
    """The callback's answer to a person: styled like the admin page, in the admin's language
    (English texts are translated when the catalogue knows them)."""
    password = settings_of(request).admin_password
    admin = bool(password and password.get_secret_value())
    return pages_of(request).message(request, title, text, status=status, ok=ok, admin=admin)


@router.get("/authorize", summary="Start connecting amoCRM (redirects to its consent page)")
async def authorize(request: Request) -> Response:
    amo = amo_of(request)
    try:
        url = await connect.new_consent_url(amo)
    except connect.ConnectError as exc:
        return envelope.error(exc.status, exc.message)
    return RedirectResponse(url, status_code=302)


@router.get("/callback", summary="amoCRM redirects here after consent")
async def callback(
    request: Request,
    code: str | None = None,
    state: str | None = None,
    referer: str | None = None,
    error: str | None = None,
) -> Response:
    amo = amo_of(request)
    try:
        await connect.consume_state(amo, state)
        if error:
            raise connect.ConnectError(
                advice.ACCESS_DENIED if error == "access_denied" else advice.AMOCRM_REFUSED
            )
        host = connect.account_host(amo, referer)
        connected = await connect.exchange(amo, code or "", host)
    except connect.ConnectError as exc:
        if _wants_json(request):
            return envelope.error(exc.status, exc.message)
        return _page(request, "amoCRM was not connected", exc.message, status=exc.status, ok=False)
    info = getattr(request.app.state, "info", None)
    if info is not None:
        info.invalidate()  # a (re)connected account may be another one: forget its lists
    data = {
        "base_domain": connected.base_domain,
        "account_name": connected.account_name,
        "account_id": connected.account_id,
    }
    if _wants_json(request):
        return envelope.success("amoCRM connected", data)
    name = connected.account_name or connected.base_domain
    return _page(
        request,
        "amoCRM connected",
        f"amogate is now connected to {name}. Leads will be delivered there; you can close "
        "this page.",
        status=200,
        ok=True,
    )


@router.get("/status", summary="Is amoCRM connected? (never shows a token)")
async def status(request: Request) -> JSONResponse:
    amo = getattr(request.app.state, "amo", None)
    row = await amo.account_state() if amo is not None else None
    data = connect.describe(row)
    data["configured"] = amo is not None
    message = "Token is valid" if data["status"] == "authorized" else "Not authorized"
    return envelope.success(message, data)
