"""POST /webhooks/amocrm/{account}/{secret}: where amoCRM sends its webhooks (docs/webhooks.md).

The secret in the path is the only credential amoCRM's webhooks can carry. A wrong secret and an
unknown account get the same 404 (the path is never echoed: it holds the secret). The answer
comes as soon as the events are stored — never after calling a subscriber — well inside
amoCRM's 2 s.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from amogate.api import envelope
from amogate.api.deps import app_state, database_of
from amogate.relay.inbound import Outcome, receive
from amogate.relay.runtime import Relay
from amogate.storage.relay import DEFAULT_KEEP_TRYING

router = APIRouter(tags=["webhooks"])

NOT_FOUND = "Endpoint not found: /webhooks/amocrm/{account}/{secret}"


def relay_of(request: Request) -> Relay | None:
    gateway = app_state(request).gateway
    return gateway.relay if gateway is not None else None


@router.post(
    "/webhooks/amocrm/{account}/{secret}",
    summary="amoCRM's webhooks in (the URL `amogate webhooks connect` registers)",
    responses={
        400: {"description": "Not an amoCRM webhook body"},
        404: {"description": "Unknown account or wrong secret"},
        413: {"description": "Body too large"},
    },
)
async def amocrm_webhook(account: str, secret: str, request: Request) -> JSONResponse:
    relay = relay_of(request)
    body = await request.body()
    keep_trying = relay.keep_trying if relay is not None else DEFAULT_KEEP_TRYING
    received = await receive(database_of(request), account, secret, body, keep_trying=keep_trying)
    if relay is not None and relay.metrics is not None:
        relay.metrics.inbound.labels(received.outcome.value).inc()
    if received.outcome is Outcome.NOT_FOUND:
        return envelope.error(404, NOT_FOUND)
    if received.outcome is Outcome.TOO_LARGE:
        return envelope.error(413, "Request body too large", {"body": received.problem})
    if received.outcome is Outcome.INVALID:
        return envelope.error(400, "Invalid webhook body", {"body": received.problem})
    if relay is not None and received.deliveries:
        relay.wake()
    return envelope.success(
        "Webhook received",
        {"events": received.events, "duplicate": received.outcome is Outcome.DUPLICATE},
    )
