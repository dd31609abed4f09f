"""`/admin/forms`: create a public form (and copy its endpoint, shown once), list and remove
forms, and see a form's last submissions. The rules are `amogate.forms.registry`'s, shared
with `amogate forms create`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import structlog
from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from amogate.forms.registry import FormProblem, NewForm, create_form
from amogate.storage import forms as form_store
from amogate.web.routes import Admin, Ctx, Form, _redirect

log = structlog.get_logger("amogate.admin")

router = APIRouter(prefix="/admin", include_in_schema=False)

EMPTY_VALUES = {
    "name": "",
    "account": "default",
    "origins": "",
    "success_url": "",
    "pipeline_id": "",
    "tags": "",
    "rate": "",
}


async def _forms_page(ctx: Ctx, *, status: int = 200, **context: Any) -> HTMLResponse:
    async with ctx.database.read() as conn:
        forms = await form_store.list_all(conn)
        counts = await form_store.submission_counts(conn, [f.id for f in forms])
    context.setdefault("new_form", None)
    context.setdefault("error", None)
    context.setdefault("form_values", EMPTY_VALUES)
    removed = ctx.request.query_params.get("removed")
    flash = ctx.t("forms.removed_done", name=removed) if removed else None
    return ctx.page(
        "forms.html",
        status=status,
        nav="forms",
        forms=forms,
        counts=counts,
        flash=flash,
        **context,
    )


@router.get("/forms")
async def forms_page(ctx: Admin) -> Response:
    return await _forms_page(ctx)


def _lines(text: str) -> list[str]:
    return [part.strip() for part in text.replace(",", "\n").splitlines() if part.strip()]


def _number(text: str, option: str) -> int | None:
    if not text.strip():
        return None
    if not text.strip().isdigit() or int(text) < 1:
        raise FormProblem(f"{option} must be a whole number of at least 1")
    return int(text)


@router.post("/forms")
async def create(form: Form) -> Response:
    ctx = form.ctx
    values = {key: form.text(key) for key in EMPTY_VALUES}
    try:
        spec = NewForm(
            name=values["name"],
            account=values["account"] or "default",
            origins=_lines(values["origins"]),
            success_url=values["success_url"] or None,
            pipeline_id=_number(values["pipeline_id"], "--pipeline-id"),
            tags=_lines(values["tags"]),
            rate_per_minute=_number(values["rate"], "--rate-per-minute"),
        )
        async with ctx.database.transaction() as conn:
            created = await create_form(conn, spec, datetime.now(UTC))
    except FormProblem as exc:
        return await _forms_page(ctx, status=422, error=str(exc), form_values=values)
    log.info("admin.form.created", form=created.handle, account=created.account)
    base = str(ctx.request.base_url).rstrip("/")
    new_form = {"name": created.name, "url": base + created.endpoint}
    return await _forms_page(ctx, status=201, new_form=new_form)


@router.get("/forms/{form_id}")
async def form_page(ctx: Admin, form_id: str) -> Response:
    async with ctx.database.read() as conn:
        row = await form_store.by_name(conn, form_id)
        submissions = [] if row is None else await form_store.recent_submissions(conn, row.id)
    if row is None or row.id != form_id:
        return ctx.page("error.html", status=404, message=ctx.t("forms.unknown"))
    return ctx.page("form.html", nav="forms", form=row, submissions=submissions)


@router.post("/forms/{form_id}/remove")
async def remove(form: Form, form_id: str) -> Response:
    async with form.ctx.database.transaction() as conn:
        row = await form_store.remove(conn, form_id)
    if row is None:
        return form.ctx.page("error.html", status=404, message=form.ctx.t("forms.unknown"))
    log.info("admin.form.removed", form=row.id)
    return _redirect("/admin/forms?" + urlencode({"removed": row.name}))
