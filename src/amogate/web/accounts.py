"""`/admin/accounts`: every amoCRM account with its connection state, its queue and a Connect
button (`/oauth/authorize?account=NAME`, which remembers the account through the state)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from amogate.accounts import service
from amogate.web.routes import Admin

router = APIRouter(prefix="/admin", include_in_schema=False)


@router.get("/accounts")
async def accounts_page(ctx: Admin) -> Response:
    views = await service.list_accounts(ctx.database, ctx.settings)
    running = set(ctx.gateway.accounts)
    return ctx.page("accounts.html", nav="accounts", accounts=views, running=running)
