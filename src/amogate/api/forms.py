"""POST /api/v1/forms/<form_id> — public form endpoints (no API key).

In order: find the form (by the digest of the id; unknown → 404), check the browser's Origin
against the form's origins (403), count the post against the per-address limit (429), read the
body (400/413), answer Tilda's `test=test` without storing, set aside honeypot posts as spam,
verify the captcha (403), then store the lead and answer. Nothing waits for amoCRM.

CORS preflights for form endpoints are answered by `FormCORSMiddleware` from the form's own
origins (the gateway-wide CORS list is for keyed API calls).
"""

from __future__ import annotations

import hmac
import math
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from amogate.api import envelope
from amogate.api.deps import database_of, gateway_of, settings_of
from amogate.api.form_answers import accepted, refused
from amogate.app_state import state_of
from amogate.errors import ValidationFailed
from amogate.forms import ids
from amogate.forms.bodies import MAX_BODY_BYTES, BodyError, parse_body
from amogate.forms.captcha import TOKEN_FIELDS, Captcha, Verdict
from amogate.forms.intake import FormIntake
from amogate.forms.recognize import recognize
from amogate.forms.submission import FormSettings, Visit, read_submission
from amogate.leads.schemas import Remark
from amogate.storage import forms as form_store
from amogate.storage import rate_counters
from amogate.storage.db import Database

log = structlog.get_logger("amogate.forms")

router = APIRouter(prefix="/api/v1/forms", tags=["forms"])

NOT_FOUND = "Form not found"
ORIGIN_REFUSED = "Origin not allowed for this form"
ACCEPTED_MESSAGE = "Form submission accepted"
TEST_MESSAGE = "Test request received; nothing stored"
CAPTCHA_REFUSED = "Captcha verification failed"
CAPTCHA_UNVERIFIED = "the captcha service could not be reached; accepted unverified"
RATE_WINDOW_S = 60
ALLOWED_HEADERS = "Content-Type, X-Requested-With"


async def find_form(database: Database, presented: str) -> form_store.FormRow | None:
    digest = ids.digest(presented)
    async with database.read() as conn:
        form = await form_store.by_hash(conn, digest)
    if form is None or not hmac.compare_digest(form.id_hash, digest):
        return None
    return form


def cors_headers(origin: str | None) -> dict[str, str]:
    if origin is None:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def _origin_allowed(form: form_store.FormRow, origin: str | None) -> bool:
    # Servers (Tilda, Apps Script, a site's backend) send no Origin; a browser always does.
    return origin is None or origin in form.origins


# The fields are whatever the form has; every value is text.
_FIELDS_SCHEMA = {
    "type": "object",
    "additionalProperties": {"type": "string", "maxLength": 10_000},
    "maxProperties": 200,
}
_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {"schema": _FIELDS_SCHEMA},
            "multipart/form-data": {"schema": _FIELDS_SCHEMA},
            "application/json": {"schema": _FIELDS_SCHEMA},
        },
    }
}


@router.post(
    "/{form_id}",
    summary="Submit a public form (urlencoded, multipart or JSON; no API key)",
    openapi_extra=_BODY_DOC,
)
async def submit(form_id: str, request: Request) -> Response:
    database = database_of(request)
    settings = settings_of(request)
    form = await find_form(database, form_id)
    if form is None:
        return refused(request, 404, NOT_FOUND)
    origin = request.headers.get("origin")
    if not _origin_allowed(form, origin):
        log.info("form.origin_refused", form=form.id, origin=origin[:200] if origin else None)
        return refused(request, 403, ORIGIN_REFUSED)
    cors = cors_headers(origin)
    ip = request.client.host if request.client else None

    retry_after = await _count_post(database, form, ip, settings.form_rate_per_minute)
    if retry_after is not None:
        return refused(request, 429, "Too many requests", headers=cors, retry_after=retry_after)

    raw = await _read_limited(request)
    if raw is None:
        return refused(
            request,
            413,
            "Request body too large",
            details={"max_bytes": str(MAX_BODY_BYTES)},
            headers=cors,
        )
    try:
        body = parse_body(request.headers.get("content-type", ""), raw)
    except BodyError as exc:
        return refused(request, 400, "Invalid form body", details={"body": str(exc)}, headers=cors)
    fields = {name.casefold(): value for name, value in reversed(body.pairs)}

    if fields.get("test", "").strip().lower() == "test":
        return envelope.success(TEST_MESSAGE, headers=cors)

    spam = bool(fields.get(form.honeypot.casefold(), "").strip())
    extra_remarks: list[Remark] = []
    if form.captcha and form.captcha_secret and not spam:
        captcha = Captcha(form.captcha, form.captcha_secret, settings.captcha_verify_url)
        verdict = await captcha.verify(fields.get(TOKEN_FIELDS[form.captcha], ""), ip)
        if verdict is Verdict.REFUSED:
            log.info("form.captcha_refused", form=form.id)
            return refused(request, 403, CAPTCHA_REFUSED, headers=cors)
        if verdict is Verdict.UNKNOWN:
            extra_remarks.append(Remark(field="captcha", problem=CAPTCHA_UNVERIFIED))

    found = recognize(body.pairs, form.field_map, ignore=[form.honeypot])
    visit = Visit(ip=ip, page=request.headers.get("referer"), origin=origin)
    settings_of_form = FormSettings(form.name, form.pipeline_id, form.tags, form.mode)
    try:
        lead = read_submission(found, settings_of_form, visit, files=body.files)
    except ValidationFailed as exc:
        if spam:  # a bot learns nothing: answered like an accepted post, nothing to store
            data = {"delivery_id": uuid.uuid4().hex, "status": "queued"}
            return accepted(
                request,
                success_url=form.success_url,
                data=data,
                headers=cors,
                message=ACCEPTED_MESSAGE,
            )
        return refused(request, 422, exc.message, details=_texts(exc.details), headers=cors)
    lead.remarks.extend(extra_remarks)

    intake = FormIntake(
        database,
        settings.phone_default_region,
        timedelta(hours=settings.delivery_max_age_hours),
        wake=_waker(request, form.account_key),
    )
    stored = await intake.store(
        form,
        lead,
        received=body.pairs,
        tranid=fields.get("tranid") or None,
        spam=spam,
        request_id=getattr(request.state, "request_id", None),
    )
    data = {"delivery_id": stored.delivery_id, "status": "queued"}
    return accepted(
        request, success_url=form.success_url, data=data, headers=cors, message=ACCEPTED_MESSAGE
    )


async def _count_post(
    database: Database, form: form_store.FormRow, ip: str | None, default_limit: int
) -> float | None:
    """Count the post in the per-address window; seconds to wait when over the limit."""
    limit = form.rate_per_minute or default_limit
    now = time.time()
    window = int(now // RATE_WINDOW_S) * RATE_WINDOW_S
    async with database.transaction() as conn:
        count = await rate_counters.hit(conn, f"form:{form.id}:{ip or '-'}", window)
    if count > limit:
        return max(1.0, math.ceil(window + RATE_WINDOW_S - now))
    return None


async def _read_limited(request: Request) -> bytes | None:
    """The body, or None as soon as it passes the form limit (a form is never that big)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _texts(details: object) -> dict[str, str]:
    if not isinstance(details, dict):
        return {}
    return {str(k): str(v) for k, v in details.items()}


def _waker(request: Request, account_key: str) -> Callable[[], None]:
    """Wakes this process's delivery worker of the form's account (workers elsewhere find the
    lead by polling)."""
    account = gateway_of(request).accounts.get(account_key)
    return account.signals.wake if account is not None else _nothing


def _nothing() -> None:
    return None


class FormCORSMiddleware:
    """Answers CORS preflights for form endpoints from each form's own origins: 204 with the
    CORS headers for a listed origin, 403 in the envelope for any other (or an unknown form).
    Every other request passes through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if scope["type"] != "http" or scope.get("method") != "OPTIONS":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if not path.startswith(ids.ENDPOINT_PREFIX) or origin is None:
            await self.app(scope, receive, send)
            return
        app = scope.get("app")
        assert isinstance(app, Starlette)
        database = state_of(app).running().database
        form_id = path[len(ids.ENDPOINT_PREFIX) :].rstrip("/")
        form = await find_form(database, form_id) if form_id and "/" not in form_id else None
        method = headers.get("access-control-request-method", "POST")
        if form is None or origin not in form.origins or method.upper() != "POST":
            response: Response = envelope.error(403, ORIGIN_REFUSED)
        else:
            response = Response(
                status_code=204,
                headers={
                    **cors_headers(origin),
                    "Access-Control-Allow-Methods": "POST",
                    "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                    "Access-Control-Max-Age": "600",
                },
            )
        await response(scope, receive, send)
