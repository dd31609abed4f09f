"""`/admin`: sign in, overview, deliveries (list, detail, retry) and API keys.

Every page needs a signed-in session (see `amogate.access`); every form carries the session's
CSRF token. Without ADMIN_PASSWORD every admin path answers with a page that says how to turn it
on. Sign-in attempts are limited per client address and in total (`access.login_limit`), in the
shared `rate_counters` table, so the limits hold across instances.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from datetime import time as day_time
from typing import Annotated, Any
from urllib.parse import urlencode

import structlog
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import FormData

from amogate.access import login_limit
from amogate.access.admin import AdminAccess
from amogate.access.keys import SCOPES
from amogate.access.sessions import (
    CSRF_FIELD,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    Session,
    new_login_token,
    tokens_match,
)
from amogate.accounts.config import DEFAULT, NAME_RULE
from amogate.app_state import state_of
from amogate.connection import connect
from amogate.connection.service import AmoConnection
from amogate.deliveries.service import Deliveries
from amogate.runtime import Gateway
from amogate.settings import Settings
from amogate.storage import deliveries as delivery_store
from amogate.storage import delivery_views
from amogate.storage.db import Database
from amogate.web import actions, overview
from amogate.web.i18n import LANG_COOKIE, negotiate, translator
from amogate.web.masking import mask_payload
from amogate.web.render import STATIC, Pages, secure_headers
from amogate.web.state_cookie import set_state_cookie

log = structlog.get_logger("amogate.admin")

router = APIRouter(prefix="/admin", include_in_schema=False)

ACCOUNT_NAME = re.compile(NAME_RULE)
LOGIN_LIMIT = login_limit.PER_ADDRESS
PAGE_SIZE = 25
RETRYABLE = (delivery_store.FAILED, delivery_store.RETRYING, delivery_store.QUEUED)
# Where a browser that asked for /oauth/authorize without a session comes back after signing in.
CONNECT_PATH = "/oauth/authorize"


@dataclass
class AdminSite:
    """Per-app admin state. `clock` (unix seconds) is replaceable in tests."""

    access: AdminAccess
    pages: Pages
    clock: Callable[[], float] = time.time


class AdminInterrupt(Exception):
    """Raised by the dependencies below to answer with `response` instead of the page."""

    def __init__(self, response: Response) -> None:
        super().__init__("admin interrupt")
        self.response = response


@dataclass
class Ctx:
    """One admin request: which site, which language, which session (signed in or None)."""

    request: Request
    site: AdminSite
    lang: str
    session: Session | None
    zone: tzinfo = UTC  # the account's time zone, for signed-in pages
    login_token: str | None = None  # the sign-in form's token (before sign-in)

    @property
    def gateway(self) -> Gateway:
        return state_of(self.request.app).running()

    @property
    def database(self) -> Database:
        return self.gateway.database

    @property
    def settings(self) -> Settings:
        return state_of(self.request.app).settings

    def amo(self, account: str = DEFAULT) -> AmoConnection | None:
        """The connection of a running account (None: not configured or not running)."""
        running = self.gateway.accounts.get(account)
        return running.amo if running is not None else None

    @property
    def deliveries(self) -> Deliveries:
        return Deliveries.of(self.database, self.settings)

    def wake_worker(self) -> None:
        """This process's workers pick requeued leads up at once (others poll the table)."""
        for account in self.gateway.accounts.values():
            account.signals.wake()

    def t(self, message_id: str, **values: object) -> str:
        return translator(self.lang)(message_id, **values)

    def page(self, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
        return self.site.pages.render(
            self.request,
            template,
            lang=self.lang,
            status=status,
            csrf=self.session.csrf if self.session else self.login_token,
            signed_in=self.session is not None,
            zone=self.zone,
            **context,
        )


def install(app: FastAPI, access: AdminAccess) -> None:
    """Add the admin page to the gateway (routes, static files, the interrupt handler)."""
    app.state.admin = AdminSite(access=access, pages=Pages())
    app.include_router(router)
    app.mount("/admin/static", StaticFiles(directory=STATIC), name="admin-static")

    async def interrupted(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, AdminInterrupt)
        return exc.response

    app.add_exception_handler(AdminInterrupt, interrupted)


# --- dependencies -------------------------------------------------------------------------------


def site_of(request: Request) -> AdminSite:
    site = request.app.state.admin
    assert isinstance(site, AdminSite)
    return site


def language(request: Request) -> str:
    return negotiate(
        request.query_params.get("lang"),
        request.cookies.get(LANG_COOKIE),
        request.headers.get("accept-language"),
    )


def _redirect(url: str) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    secure_headers(response)
    return response


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _set_session(ctx: Ctx, response: Response, session: Session) -> None:
    signer = ctx.site.access.signer
    # Path "/": /oauth/authorize (connecting amoCRM) needs the session too. SameSite=Strict:
    # no other site can make the browser send it.
    response.set_cookie(
        SESSION_COOKIE,
        signer.dumps(session),
        max_age=signer.ttl,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_secure(ctx.request),
    )
    response.delete_cookie(
        LOGIN_COOKIE, path="/admin", httponly=True, samesite="strict", secure=_secure(ctx.request)
    )
    # Earlier versions scoped the session cookie to /admin: a leftover one would shadow this.
    response.delete_cookie(
        SESSION_COOKIE, path="/admin", httponly=True, samesite="strict", secure=_secure(ctx.request)
    )


async def base_ctx(request: Request) -> Ctx:
    """Any admin request; the disabled page when ADMIN_PASSWORD is unset."""
    site = site_of(request)
    lang = language(request)
    if not site.access.enabled:
        raise AdminInterrupt(site.pages.render(request, "disabled.html", lang=lang, status=403))
    session = await site.access.session_of(request.cookies.get(SESSION_COOKIE), now=site.clock())
    return Ctx(request, site, lang, session, login_token=request.cookies.get(LOGIN_COOKIE))


async def admin_ctx(ctx: Annotated[Ctx, Depends(base_ctx)]) -> Ctx:
    """Signed-in admins only; anyone else is sent to the sign-in page."""
    if ctx.session is None:
        target = ctx.request.url.path
        if ctx.request.method == "GET" and ctx.request.url.query:
            target += "?" + ctx.request.url.query
        raise AdminInterrupt(_redirect("/admin/login?" + urlencode({"next": target})))
    ctx.zone = await overview.account_zone(ctx.request.app)
    return ctx


async def _checked_form(ctx: Ctx) -> FormData:
    form = await ctx.request.form()
    presented = form.get(CSRF_FIELD)
    if ctx.session is None or not ctx.session.csrf_matches(
        presented if isinstance(presented, str) else None
    ):
        log.warning("admin.csrf_refused", path=ctx.request.url.path)
        raise AdminInterrupt(ctx.page("error.html", status=403, message=ctx.t("error.csrf")))
    return form


@dataclass
class AdminForm:
    ctx: Ctx
    form: FormData

    def text(self, name: str) -> str:
        value = self.form.get(name)
        return value if isinstance(value, str) else ""

    def texts(self, name: str) -> list[str]:
        return [v for v in self.form.getlist(name) if isinstance(v, str)]


async def admin_form(ctx: Annotated[Ctx, Depends(admin_ctx)]) -> AdminForm:
    """A signed-in admin's form submission carrying the session's CSRF token."""
    return AdminForm(ctx, await _checked_form(ctx))


Admin = Annotated[Ctx, Depends(admin_ctx)]
Form = Annotated[AdminForm, Depends(admin_form)]
Anyone = Annotated[Ctx, Depends(base_ctx)]


# --- sign in / out ------------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    """Only our own admin pages (and the Connect step): never another site (`//evil`)."""
    if not target or target.startswith("//") or "\\" in target:
        return "/admin"
    if target.startswith("/admin") or target == CONNECT_PATH:
        return target
    return "/admin"


def _login_page(ctx: Ctx, *, status: int = 200, error: str | None = None) -> HTMLResponse:
    """The sign-in form, with a fresh anti-forgery token when the browser has none."""
    fresh = ctx.login_token is None
    if fresh:
        ctx.login_token = new_login_token()
    next_url = _safe_next(ctx.request.query_params.get("next"))
    response = ctx.page("login.html", status=status, error=error, next_url=next_url)
    if fresh:
        assert ctx.login_token is not None
        response.set_cookie(
            LOGIN_COOKIE,
            ctx.login_token,
            max_age=3600,
            path="/admin",
            httponly=True,
            samesite="strict",
            secure=_secure(ctx.request),
        )
    return response


@router.get("/login")
async def login_form(ctx: Anyone) -> Response:
    if ctx.session is not None:
        return _redirect(_safe_next(ctx.request.query_params.get("next")))
    return _login_page(ctx)


def _client_host(request: Request) -> str | None:
    return request.client.host if request.client else None


@router.post("/login")
async def login(ctx: Anyone) -> Response:
    async with ctx.database.transaction() as conn:
        attempt = await login_limit.begin(conn, _client_host(ctx.request), ctx.site.clock())
    if attempt.refused:
        log.warning("admin.login.rate_limited")
        response = ctx.page(
            "login.html",
            status=429,
            error=ctx.t("login.too_many", seconds=attempt.wait),
            next_url="/admin",
        )
        response.headers["Retry-After"] = str(attempt.wait)
        return response
    form = await ctx.request.form()
    presented = form.get(CSRF_FIELD)
    if not tokens_match(presented if isinstance(presented, str) else None, ctx.login_token):
        ctx.session, ctx.login_token = None, None
        return _login_page(ctx, status=403, error=ctx.t("error.csrf"))
    password = form.get("password")
    if not isinstance(password, str) or not await ctx.site.access.password_matches(password):
        log.warning("admin.login.refused")
        ctx.session = None
        return _login_page(ctx, status=401, error=ctx.t("login.wrong"))
    async with ctx.database.transaction() as conn:
        await login_limit.forgive(conn, attempt)  # a successful sign-in is not an attempt
    log.info("admin.login.done")
    next_value = form.get("next")
    redirect = _redirect(_safe_next(next_value if isinstance(next_value, str) else None))
    _set_session(ctx, redirect, await ctx.site.access.new_session(now=ctx.site.clock()))
    return redirect


@router.post("/logout")
async def logout(ctx: Anyone) -> Response:
    await _checked_form(ctx)
    await ctx.site.access.end_all_sessions()
    log.info("admin.logout")
    response = _redirect("/admin/login")
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=_secure(ctx.request)
    )
    return response


# --- connecting amoCRM --------------------------------------------------------------------------


@router.get("/replace-account")
async def replace_account_page(ctx: Admin) -> Response:
    """The confirm step before connecting an amoCRM account other than the connected one."""
    amo = ctx.amo()
    row = await amo.account_state() if amo is not None else None
    return ctx.page(
        "replace.html",
        nav="overview",
        connected_domain=row.base_domain if row is not None else None,
        connected_id=row.amo_account_id if row is not None else None,
    )


@router.post("/replace-account")
async def replace_account(form: Form) -> Response:
    """Confirmed: start the consent with a state that may replace the connected account."""
    ctx = form.ctx
    amo = ctx.amo()
    if amo is None:
        return ctx.page("error.html", status=400, message=ctx.t("replace.not_configured"))
    try:
        consent = await connect.start_consent(amo, browser=True, replace_account=True)
    except connect.ConnectError as exc:
        return ctx.page("error.html", status=exc.status, message=exc.message)
    log.info("admin.account.replace_started")
    response = RedirectResponse(consent.url, status_code=303)
    secure_headers(response)
    assert consent.browser_cookie is not None
    set_state_cookie(response, consent.browser_cookie, secure=_secure(ctx.request))
    return response


# --- overview -----------------------------------------------------------------------------------


@router.get("")
async def overview_page(ctx: Admin) -> Response:
    view = await overview.gather(ctx.request.app)
    return ctx.page("overview.html", view=view, statuses=delivery_store.STATUSES, nav="overview")


# --- deliveries ---------------------------------------------------------------------------------


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _start_of(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, day_time.min, tzinfo=zone)


def _delivery_filter(
    request: Request, zone: tzinfo
) -> tuple[delivery_views.DeliveryFilter, dict[str, str]]:
    """The list's filters; dates are days in the account's time zone."""
    q = request.query_params
    status = q.get("state") if q.get("state") in delivery_store.STATUSES else None
    day_from, day_to = _day(q.get("from")), _day(q.get("to"))
    text = (q.get("q") or "").strip()[:100] or None
    account = q.get("account") or None
    if account is not None and not ACCOUNT_NAME.fullmatch(account):
        account = None
    f = delivery_views.DeliveryFilter(
        status=status,
        account=account,
        created_from=_start_of(day_from, zone) if day_from else None,
        created_before=_start_of(day_to + timedelta(days=1), zone) if day_to else None,
        text=text,
    )
    shown = {
        "state": status or "",
        "from": day_from.isoformat() if day_from else "",
        "to": day_to.isoformat() if day_to else "",
        "q": text or "",
        "account": account or "",
    }
    return f, shown


def _page_number(request: Request) -> int:
    try:
        return max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        return 1


def _flash(ctx: Ctx) -> str | None:
    """A confirmation named by `?done=` (never free text from the URL)."""
    q = ctx.request.query_params
    done = q.get("done")
    if done == "requeued":
        return ctx.t("deliveries.requeued")
    if done == "requeued_many":
        count = q.get("count", "0")
        return ctx.t("deliveries.requeued_many", count=int(count) if count.isdigit() else 0)
    if done == "not_retryable":
        return ctx.t("deliveries.not_retryable")
    return None


@router.get("/deliveries")
async def deliveries_page(ctx: Admin) -> Response:
    f, shown = _delivery_filter(ctx.request, ctx.zone)
    page = _page_number(ctx.request)
    async with ctx.database.read() as conn:
        result = await delivery_views.search(
            conn, f, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
        )
    pages = max(1, math.ceil(result.total / PAGE_SIZE))
    links = {
        "prev": "?" + urlencode({**shown, "page": page - 1}) if page > 1 else None,
        "next": "?" + urlencode({**shown, "page": page + 1}) if page < pages else None,
    }
    return ctx.page(
        "deliveries.html",
        nav="deliveries",
        result=result,
        filters=shown,
        page=page,
        pages=pages,
        links=links,
        statuses=delivery_store.STATUSES,
        accounts=sorted(ctx.gateway.accounts),
        flash=_flash(ctx),
    )


@router.get("/deliveries/{delivery_id}")
async def delivery_page(ctx: Admin, delivery_id: str) -> Response:
    record = await ctx.deliveries.get(delivery_id)
    if record is None:
        return ctx.page("error.html", status=404, message=ctx.t("error.not_found"))
    delivery, attempts = record.delivery, record.attempts
    amo = ctx.amo(delivery.account_key)
    host = None
    if amo is not None and delivery.amo_lead_id is not None:
        host = overview.account_host(amo, await amo.account_state())
    return ctx.page(
        "delivery.html",
        nav="deliveries",
        d=delivery,
        attempts=attempts,
        request_payload=mask_payload(delivery.payload),
        received_payload=None if delivery.received is None else mask_payload(delivery.received),
        lead_url=overview.lead_url(amo, host, delivery.amo_lead_id),
        retryable=delivery.status in RETRYABLE,
        flash=_flash(ctx),
    )


@router.post("/deliveries/retry-failed")
async def retry_failed(form: Form) -> Response:
    count = await form.ctx.deliveries.requeue_failed()
    log.info("admin.deliveries.retry_failed", count=count)
    form.ctx.wake_worker()
    return _redirect("/admin/deliveries?" + urlencode({"done": "requeued_many", "count": count}))


@router.post("/deliveries/{delivery_id}/retry")
async def retry_one(form: Form, delivery_id: str) -> Response:
    done = await form.ctx.deliveries.requeue(delivery_id)
    log.info("admin.delivery.retry", delivery_id=delivery_id, requeued=done)
    form.ctx.wake_worker()
    outcome = "requeued" if done else "not_retryable"
    return _redirect(f"/admin/deliveries/{delivery_id}?done={outcome}")


# --- API keys -----------------------------------------------------------------------------------


async def _keys_page(ctx: Ctx, *, status: int = 200, **context: Any) -> HTMLResponse:
    keys = await actions.list_keys(ctx.database)
    context.setdefault("new_key", None)
    context.setdefault("error", None)
    context.setdefault(
        "form_values", {"name": "", "scopes": ["leads:write"], "origins": "", "rate": ""}
    )
    revoked_id = ctx.request.query_params.get("revoked")
    revoked = next((k for k in keys if k.id == revoked_id), None)
    flash = ctx.t("keys.revoked_done", name=revoked.name) if revoked else None
    return ctx.page(
        "keys.html", status=status, nav="keys", keys=keys, scopes=SCOPES, flash=flash, **context
    )


@router.get("/keys")
async def keys_page(ctx: Admin) -> Response:
    return await _keys_page(ctx)


@router.post("/keys")
async def create_key(form: Form) -> Response:
    ctx = form.ctx
    name, scopes = form.text("name"), form.texts("scopes")
    origins, rate = form.text("origins"), form.text("rate")
    values = {"name": name, "scopes": scopes, "origins": origins, "rate": rate}
    wanted = actions.parse_key_request(name, scopes, origins, rate)
    if isinstance(wanted, actions.KeyProblem):
        error = ctx.t(wanted.message_id, **wanted.values)
        return await _keys_page(ctx, status=422, error=error, form_values=values)
    key = await actions.create_key(ctx.database, wanted)
    if key is None:
        error = ctx.t("keys.error_name_taken")
        return await _keys_page(ctx, status=409, error=error, form_values=values)
    log.info("admin.key.created", key_name=wanted.name, scopes=wanted.scopes)
    return await _keys_page(ctx, status=201, new_key={"name": wanted.name, "key": key})


@router.post("/keys/{key_id}/revoke")
async def revoke_key(form: Form, key_id: str) -> Response:
    row = await actions.revoke_key(form.ctx.database, key_id)
    if row is None:
        return form.ctx.page("error.html", status=404, message=form.ctx.t("keys.unknown"))
    log.info("admin.key.revoked", key_name=row.name)
    return _redirect("/admin/keys?" + urlencode({"revoked": row.id}))
