"""The control API under `/_sandbox` (no auth, never logged, never counted in the budget).

- `GET /_sandbox/requests[?since=SEQ][&path_prefix=/api/v4/...]` — logged requests, oldest first;
  `since` is the `seq` of the last entry already seen.
- `GET /_sandbox/stats` — counters (see `SandboxState.stats`).
- `POST /_sandbox/faults` `{"mode", "duration_s", "path_prefix", "count", "delay_s"}` → the fault;
  `GET /_sandbox/faults` lists active ones; `DELETE /_sandbox/faults` ends them all.
- `POST /_sandbox/authorize` `{"client_id", "state"}` → `{"code", "state", "referer",
  "client_id", "redirect_uri"}`: the consent without a browser.
- `POST /_sandbox/reset` `{"tokens": false}` — back to the seeded account (see `state.py`).
- `POST /_sandbox/expire-tokens` `{"include_long_lived": false}` — every current access token
  expires now.
- `GET /_sandbox/settings` / `PATCH /_sandbox/settings` `{"duplicate_control": bool,
  "webhook_timeout_s": 2.0, "webhook_retry_factor": 1.0, "webhook_disable_failures": 100,
  "webhook_disable_window_s": 7200}` — runtime settings (any subset; a bad value → 400 and
  nothing changes; `reset` restores the start values).
- `GET /_sandbox/webhooks/deliveries[?since=SEQ][&destination=URL][&webhook_id=N]` — every
  attempt to send a webhook, oldest first: `seq`, `delivery_id`, `attempt`, `webhook_id`,
  `destination`, `sent_at`, `status` (None = no answer), `outcome` (`ok`, `rejected`,
  `timeout`, `unreachable`), `latency_ms`, `error`, `next_attempt_in_s` (amoCRM's scale; None
  = no more attempts), `webhook_disabled`, `events` (`code`, `entity`, `action`, `id`) and the
  urlencoded `body`. So a test can prove what amoCRM saw from its receiver.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from amogate.amocrm.sandbox.faults import FaultSpecError
from amogate.amocrm.sandbox.responses import plain_json
from amogate.amocrm.sandbox.routes.common import state_of
from amogate.amocrm.sandbox.webhook_policy import PolicyError

JSON = dict[str, Any]


async def requests(request: Request) -> Response:
    state = state_of(request)
    raw = request.query_params.get("since", "0")
    entries = state.log.since(int(raw) if raw.isdigit() else 0)
    prefix = request.query_params.get("path_prefix")
    if prefix:
        entries = [e for e in entries if str(e["path"]).startswith(prefix)]
    return plain_json(entries)


async def stats(request: Request) -> Response:
    return plain_json(state_of(request).stats())


async def add_fault(request: Request) -> Response:
    state = state_of(request)
    body = await _object(request)
    try:
        fault = state.faults.add(body)
    except FaultSpecError as exc:
        return plain_json({"error": str(exc)}, status=400)
    return plain_json(fault.as_dict(), status=201)


async def list_faults(request: Request) -> Response:
    return plain_json(state_of(request).faults.active())


async def clear_faults(request: Request) -> Response:
    state_of(request).faults.clear()
    return Response(status_code=204)


async def authorize(request: Request) -> Response:
    state = state_of(request)
    body = await _object(request)
    client_id = str(body.get("client_id") or state.config.client_id)
    if client_id != state.config.client_id:
        return plain_json({"error": "unknown client_id"}, status=400)
    result: JSON = {"code": state.tokens.issue_code(client_id)}
    if body.get("state") is not None:
        result["state"] = str(body["state"])
    result.update(
        referer=state.config.referer,
        client_id=client_id,
        redirect_uri=state.config.redirect_uri,
    )
    return plain_json(result)


async def reset(request: Request) -> Response:
    body = await _object(request)
    state_of(request).reset(tokens=bool(body.get("tokens", False)))
    return Response(status_code=204)


async def expire_tokens(request: Request) -> Response:
    body = await _object(request)
    expired = state_of(request).tokens.expire_access_tokens(
        include_long_lived=bool(body.get("include_long_lived", False))
    )
    return plain_json({"expired": expired})


async def settings(request: Request) -> Response:
    state = state_of(request)
    if request.method == "PATCH":
        body = await _object(request)
        unknown = set(body) - {"duplicate_control", *state.policy.as_dict()}
        duplicate = body.get("duplicate_control", state.duplicate_control)
        if unknown:
            return plain_json({"error": f"unknown settings: {', '.join(sorted(unknown))}"}, 400)
        if not isinstance(duplicate, bool):
            return plain_json({"error": "duplicate_control must be true or false"}, 400)
        try:
            state.policy.update(body)
        except PolicyError as exc:
            return plain_json({"error": str(exc)}, status=400)
        state.duplicate_control = duplicate
    return plain_json({"duplicate_control": state.duplicate_control, **state.policy.as_dict()})


async def deliveries(request: Request) -> Response:
    state = state_of(request)
    params = request.query_params
    raw = params.get("since", "0")
    attempts = state.sender.since(int(raw) if raw.isdigit() else 0)
    if "destination" in params:
        attempts = [a for a in attempts if a["destination"] == params["destination"]]
    if params.get("webhook_id", "").isdigit():
        attempts = [a for a in attempts if a["webhook_id"] == int(params["webhook_id"])]
    return plain_json(attempts)


async def _object(request: Request) -> JSON:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


ROUTES = [
    Route("/_sandbox/requests", requests, methods=["GET"]),
    Route("/_sandbox/stats", stats, methods=["GET"]),
    Route("/_sandbox/faults", add_fault, methods=["POST"]),
    Route("/_sandbox/faults", list_faults, methods=["GET"]),
    Route("/_sandbox/faults", clear_faults, methods=["DELETE"]),
    Route("/_sandbox/authorize", authorize, methods=["POST"]),
    Route("/_sandbox/reset", reset, methods=["POST"]),
    Route("/_sandbox/expire-tokens", expire_tokens, methods=["POST"]),
    Route("/_sandbox/settings", settings, methods=["GET", "PATCH"]),
    Route("/_sandbox/webhooks/deliveries", deliveries, methods=["GET"]),
]
