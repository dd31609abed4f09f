"""The OAuth2 flow in the browser: /oauth/authorize → amoCRM consent → /oauth/callback."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from amogate.api import envelope
from amogate.api.deps import amo_of, settings_of
from amogate.connection import advice, connect

router = APIRouter(prefix="/oauth", tags=["oauth"])


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _page(title: str, text: str, *, status: int, ok: bool, admin: bool = False) -> HTMLResponse:
    colour = "#1a7f37" if ok else "#b42318"
    back = ' · <a href="/admin">Admin page</a>' if admin else ""
    body = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>{escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}}
h1{{color:{colour};font-size:1.4rem}}</style></head><body>
<h1>{escape(title)}</h1><p>{escape(text)}</p>
<p><a href="/oauth/status">Connection status</a>{back}</p></body></html>"""
    return HTMLResponse(body, status_code=status)


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
    admin_password = settings_of(request).admin_password
    admin = bool(admin_password and admin_password.get_secret_value())
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
        return _page(
            "amoCRM was not connected", exc.message, status=exc.status, ok=False, admin=admin
        )
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
        "amoCRM connected",
        f"amogate is now connected to {name}. Leads will be delivered there; you can close "
        "this page.",
        status=200,
        ok=True,
        admin=admin,
    )


@router.get("/status", summary="Is amoCRM connected? (never shows a token)")
async def status(request: Request) -> JSONResponse:
    amo = getattr(request.app.state, "amo", None)
    row = await amo.account_state() if amo is not None else None
    data = connect.describe(row)
    data["configured"] = amo is not None
    message = "Token is valid" if data["status"] == "authorized" else "Not authorized"
    return envelope.success(message, data)
