"""`/admin/webhooks`: the relay on the admin page — subscribers, amoCRM's view of our webhook,
recent events, and failed deliveries with Retry (the same actions as `amogate webhooks`)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

import structlog
from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from amogate.relay.runtime import keep_trying
from amogate.storage import relay as store
from amogate.storage import relay_queue as queue
from amogate.web.render import secure_headers
from amogate.web.routes import Admin, Ctx, Form

log = structlog.get_logger("amogate.admin")

router = APIRouter(prefix="/admin", include_in_schema=False)

RECENT = 20


def _wake(ctx: Ctx) -> None:
    relay = ctx.gateway.relay
    if relay is not None:
        relay.wake()


def _redirect(query: dict[str, str | int]) -> RedirectResponse:
    response = RedirectResponse("/admin/webhooks?" + urlencode(query), status_code=303)
    secure_headers(response)
    return response


@router.get("/webhooks")
async def webhooks_page(ctx: Admin) -> Response:
    async with ctx.database.read() as conn:
        subscribers = await store.list_subscribers(conn)
        accounts = await store.list_accounts(conn)
        events = await store.recent_events(conn, limit=RECENT)
        failed = await queue.list_deliveries(conn, status=queue.FAILED, limit=50)
        counts = await queue.counts(conn)
    q = ctx.request.query_params
    flash = None
    if q.get("done") == "requeued":
        flash = ctx.t("webhooks.requeued", count=q.get("count", "0"))
    return ctx.page(
        "webhooks.html",
        nav="webhooks",
        subscribers=subscribers,
        accounts=accounts,
        events=events,
        failed=failed,
        counts=counts,
        statuses=queue.STATUSES,
        flash=flash,
    )


@router.post("/webhooks/retry-failed")
async def retry_all(form: Form) -> Response:
    return await _retry(form.ctx, None)


@router.post("/webhooks/deliveries/{delivery_id}/retry")
async def retry_one(form: Form, delivery_id: str) -> Response:
    return await _retry(form.ctx, delivery_id)


async def _retry(ctx: Ctx, delivery_id: str | None) -> Response:
    async with ctx.database.transaction() as conn:
        count = await queue.retry(
            conn,
            now=datetime.now(UTC),
            keep_trying=keep_trying(ctx.settings),
            delivery_id=delivery_id,
        )
    log.info("admin.webhooks.retry", delivery_id=delivery_id, count=count)
    _wake(ctx)
    return _redirect({"done": "requeued", "count": count})
