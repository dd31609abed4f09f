"""/api/v1/diagnostics: token status and sanitized configuration — never a secret."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy.engine import make_url

from amogate import __version__
from amogate.access.keys import Principal
from amogate.accounts.config import DEFAULT
from amogate.api import envelope
from amogate.api.auth import current_principal
from amogate.api.deps import gateway_of, named_account, settings_of
from amogate.connection import connect

router = APIRouter(prefix="/api/v1/diagnostics", tags=["diagnostics"])


@router.get("/token-status", summary="Token validity and expiry (no token is ever shown)")
async def token_status(
    request: Request, principal: Annotated[Principal, Depends(current_principal)]
) -> JSONResponse:
    principal.require("admin")
    gateway = gateway_of(request)
    account = gateway.accounts.get(principal.account)
    if account is None and principal.account != DEFAULT:
        account = await named_account(request, principal.account)  # 404 when unknown
    amo = account.amo if account is not None else None
    row = await amo.account_state() if amo is not None else None
    data = connect.describe(row)
    data["account"] = principal.account
    if amo is not None:
        budget = await amo.limiter.state()
        if budget is not None:
            data["rate_limited_total"] = budget.total_429
            data["blocked_total"] = budget.total_403
            data["blocked_until"] = budget.blocked_until or None
    return envelope.success("Token status retrieved successfully", data)


@router.get("/config", summary="Sanitized configuration")
async def config(
    request: Request, principal: Annotated[Principal, Depends(current_principal)]
) -> JSONResponse:
    principal.require("admin")
    s = settings_of(request)
    url = make_url(s.database_url)
    client_id = s.amo_client_id
    data = {
        "version": __version__,
        "amo_domain": s.amo_domain or None,
        "amo_base_url": s.amo_base_url or None,
        "amo_client_id": (client_id[:8] + "…") if len(client_id) > 8 else (client_id or None),
        "amo_client_secret_set": bool(s.amo_client_secret.get_secret_value()),
        "amo_redirect_uri": s.amo_redirect_uri,
        "amo_long_lived_token_set": bool(
            s.amo_long_lived_token and s.amo_long_lived_token.get_secret_value()
        ),
        "database": url.get_backend_name(),
        "amo_rate_limit": s.amo_rate_limit,
        "lead_sync_timeout": s.lead_sync_timeout,
        "info_cache_ttl": s.info_cache_ttl,
        "phone_default_region": s.phone_default_region,
        "cors_allowed_origins": s.cors_allowed_origins,
        "log_format": s.log_format,
        "log_errors": s.log_errors,
        "max_body_bytes": s.max_body_bytes,
        "token_storage_path": str(s.token_storage_path),
        "admin_page_enabled": s.admin_enabled,
        "metrics_public": s.metrics_public,
        "sqlite_synchronous": s.sqlite_synchronous if s.is_sqlite else None,
        "data_retention_days": s.data_retention_days,
        "forwarded_allow_ips": s.forwarded_allow_ips,
    }
    return envelope.success("Configuration retrieved successfully", data)
