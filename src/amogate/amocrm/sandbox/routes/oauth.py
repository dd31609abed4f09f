"""OAuth2 (amocrm-api.md §1): the consent page and `POST /oauth2/access_token`.

The consent page lives on the sandbox itself (amoCRM's is on `www.amocrm.ru`). Allow redirects to
the registered redirect URI with `code`, `state` (only if sent), `referer` (host:port of the
sandbox) and `client_id`; Deny with `error=access_denied`. The token endpoint takes JSON or form
bodies. Assumption: a redirect URI that differs from the registered one is an invalid client
(401), as in league/oauth2-server; on the refresh grant it is checked only when sent.
"""

from __future__ import annotations

import html
import json
import secrets
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from amogate.amocrm.sandbox.responses import plain_json, raw_problem
from amogate.amocrm.sandbox.routes.common import state_of
from amogate.amocrm.sandbox.tokens import (
    OAuthProblem,
    TokenPair,
    invalid_client,
    invalid_request,
)

CONSENT_PAGE = """<!doctype html>
<html lang="ru"><head><meta charset="utf-8"><title>amoCRM sandbox — доступ к аккаунту</title>
</head><body>
<h1>Предоставить доступ</h1>
<p>Интеграция <b>{client_id}</b> запрашивает доступ к аккаунту <b>{subdomain}</b>.</p>
<form method="post" action="/oauth/decide">
<input type="hidden" name="client_id" value="{client_id}">
<input type="hidden" name="state" value="{state}">
<input type="hidden" name="has_state" value="{has_state}">
<input type="hidden" name="mode" value="{mode}">
<button type="submit" name="decision" value="allow" id="allow">Разрешить</button>
<button type="submit" name="decision" value="deny" id="deny">Отказать</button>
</form></body></html>
"""

ERROR_PAGE = """<!doctype html>
<html lang="ru"><head><meta charset="utf-8"><title>amoCRM sandbox — ошибка</title></head>
<body><h1>Ошибка</h1><p>{message}</p></body></html>
"""


async def consent(request: Request) -> Response:
    state = state_of(request)
    client_id = request.query_params.get("client_id", "")
    if client_id != state.config.client_id:
        message = "Интеграция не найдена (неизвестный client_id)."
        return HTMLResponse(ERROR_PAGE.format(message=html.escape(message)), status_code=400)
    oauth_state = request.query_params.get("state")
    page = CONSENT_PAGE.format(
        client_id=html.escape(client_id),
        subdomain=html.escape(state.config.subdomain),
        state=html.escape(oauth_state or ""),
        has_state="1" if oauth_state is not None else "",
        mode=html.escape(request.query_params.get("mode", "post_message")),
    )
    return HTMLResponse(page)


async def decide(request: Request) -> Response:
    """The consent buttons' target; GET with the same fields works too (for curl demos)."""
    state = state_of(request)
    form: Any = request.query_params if request.method == "GET" else await request.form()
    client_id = str(form.get("client_id", ""))
    if client_id != state.config.client_id:
        message = "Интеграция не найдена (неизвестный client_id)."
        return HTMLResponse(ERROR_PAGE.format(message=html.escape(message)), status_code=400)
    oauth_state = str(form.get("state", "")) if form.get("has_state") else None
    params: list[tuple[str, str]]
    if form.get("decision") == "allow":
        params = [("code", state.tokens.issue_code(client_id))]
        if oauth_state is not None:
            params.append(("state", oauth_state))
        params += [("referer", state.config.referer), ("client_id", client_id)]
    else:
        params = [("error", "access_denied"), ("client_id", client_id)]
        if oauth_state is not None:
            params.append(("state", oauth_state))
    separator = "&" if "?" in state.config.redirect_uri else "?"
    return RedirectResponse(
        f"{state.config.redirect_uri}{separator}{urlencode(params)}", status_code=302
    )


async def access_token(request: Request) -> Response:
    state = state_of(request)
    data = await _token_request(request)
    try:
        pair = _grant(request, data)
    except OAuthProblem as exc:
        return raw_problem(exc.status, exc.body)
    return plain_json(
        {
            "token_type": "Bearer",
            "expires_in": state.config.access_token_ttl,
            "server_time": state.now(),
            "access_token": pair.access_token,
            "refresh_token": pair.refresh_token,
        }
    )


async def current_subdomain(request: Request) -> Response:
    """Where the account lives now, found by a refresh token (§1.9; the PHP client's fallback)."""
    state = state_of(request)
    token = request.headers.get("x-refresh-token", "")
    pair = state.tokens.by_refresh.get(token)
    if pair is None or pair.revoked:
        return raw_problem(401, invalid_request("Token has been revoked", status=401).body)
    host = state.config.referer
    return plain_json(
        {
            "id": state.account_id,
            "subdomain": state.config.subdomain,
            "domain": host,
            "top_level_domain": host.rsplit(".", 1)[-1].split(":")[0],
        }
    )


def _grant(request: Request, data: dict[str, str]) -> TokenPair:
    state = state_of(request)
    config = state.config
    grant_type = data.get("grant_type")
    if grant_type not in ("authorization_code", "refresh_token"):
        raise invalid_request("Check the `grant_type` parameter")
    if not data.get("client_id"):
        raise invalid_request("Check the `client_id` parameter")
    if not secrets.compare_digest(data["client_id"], config.client_id) or (
        not secrets.compare_digest(data.get("client_secret", ""), config.client_secret)
    ):
        raise invalid_client()
    redirect_uri = data.get("redirect_uri")
    if grant_type == "authorization_code":
        if redirect_uri != config.redirect_uri:
            raise invalid_client()
        if not data.get("code"):
            raise invalid_request("Check the `code` parameter")
        return state.tokens.exchange_code(data["code"], data["client_id"])
    if redirect_uri is not None and redirect_uri != config.redirect_uri:
        raise invalid_client()
    if not data.get("refresh_token"):
        raise invalid_request("Check the `refresh_token` parameter")
    return state.tokens.refresh(data["refresh_token"])


async def _token_request(request: Request) -> dict[str, str]:
    """The token call's fields from a JSON or a form body (both are used by real clients)."""
    raw = await request.body()
    content_type = request.headers.get("content-type", "")
    parsed: Any = None
    if "application/x-www-form-urlencoded" not in content_type:
        try:
            parsed = json.loads(raw) if raw.strip() else None
        except ValueError:
            parsed = None
    if parsed is None:
        parsed = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    if not isinstance(parsed, dict):
        return {}
    return {str(k): str(v) for k, v in parsed.items() if v is not None}


ROUTES = [
    Route("/oauth", consent, methods=["GET"]),
    Route("/oauth/decide", decide, methods=["GET", "POST"]),
    Route("/oauth2/account/current/subdomain", current_subdomain, methods=["GET"]),
    Route("/oauth2/access_token", access_token, methods=["POST"]),
]
