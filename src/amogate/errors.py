"""The gateway's error tree: each error knows its HTTP status and its public message.

    GatewayError                      500  "An unexpected error occurred"
    ├── InvalidJSON                   400  "Invalid JSON"            details.json_error
    ├── ValidationFailed              422  "Validation failed"       details keyed by dotted path
    ├── AuthenticationFailed          401  the original gateway's body (see api/errors.py)
    ├── Forbidden                     403  e.g. "API key lacks scope info:read"
    ├── NotFound                      404
    ├── Conflict                      409
    ├── PayloadTooLarge               413
    ├── RateLimited                   429  with Retry-After
    ├── UpstreamError                 502  "amoCRM returned an error"
    ├── ServiceUnavailable            503  with Retry-After when known
    └── UpstreamTimeout               504  "amoCRM did not answer in time"

Messages are written for the people who call the gateway; they never carry exception text,
tokens or keys. The one place that renders them is `amogate.api.errors`; the one place an amoCRM
failure (`amogate.failures`) becomes one of them is `public_error`. `upstream` keeps that
classified failure behind the public error for the worker, the records and logs (never rendered).
"""

from __future__ import annotations

from typing import Any

from amogate.failures import Failure

UNAVAILABLE = "amoCRM is unavailable"
RATE_LIMITED = "amoCRM rate limit reached"
NOT_CONNECTED = "amoCRM is not connected: open /oauth/authorize to connect it"
NEEDS_REAUTHORIZATION = "amoCRM needs reauthorization: open /oauth/authorize to reconnect it"
# Retry-After for a 429 when amoCRM did not say how long to wait.
DEFAULT_RATE_LIMIT_RETRY_AFTER = 2.0


class GatewayError(Exception):
    status_code = 500
    message = "An unexpected error occurred"

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        retry_after: float | None = None,
        upstream: Failure | None = None,
    ) -> None:
        self.message = message or type(self).message
        self.details = details or {}
        self.retry_after = retry_after
        self.upstream = upstream
        super().__init__(self.message)


class InvalidJSON(GatewayError):
    status_code = 400
    message = "Invalid JSON"


class ValidationFailed(GatewayError):
    status_code = 422
    message = "Validation failed"


class AuthenticationFailed(GatewayError):
    status_code = 401
    message = "Invalid or missing API key"


class Forbidden(GatewayError):
    status_code = 403
    message = "Forbidden"


class NotFound(GatewayError):
    status_code = 404
    message = "Not found"


class Conflict(GatewayError):
    status_code = 409
    message = "Conflict"


class PayloadTooLarge(GatewayError):
    status_code = 413
    message = "Request body too large"


class RateLimited(GatewayError):
    status_code = 429
    message = "Too many requests"


class UpstreamError(GatewayError):
    status_code = 502
    message = "amoCRM returned an error"


class ServiceUnavailable(GatewayError):
    status_code = 503
    message = "Service unavailable"


class UpstreamTimeout(GatewayError):
    status_code = 504
    message = "amoCRM did not answer in time"


def public_error(failure: Failure) -> GatewayError:
    """The public error for a classified amoCRM failure: fixed messages, Retry-After when
    known, the failure kept behind it (`upstream`)."""
    error = _public_error(failure)
    error.upstream = failure
    return error


def _public_error(failure: Failure) -> GatewayError:
    match failure.kind:
        case "rate_limited":
            retry_after = failure.retry_after
            if retry_after is None or retry_after <= 0:
                retry_after = DEFAULT_RATE_LIMIT_RETRY_AFTER
            return ServiceUnavailable(RATE_LIMITED, retry_after=retry_after)
        case "timeout":
            return UpstreamTimeout(retry_after=failure.retry_after)
        case "unavailable":
            return ServiceUnavailable(UNAVAILABLE, retry_after=failure.retry_after)
        case "blocked":
            return ServiceUnavailable(
                UNAVAILABLE,
                details={"reason": "amoCRM refused access (403); calls to it are paused"},
                retry_after=failure.blocked_for,
            )
        case "not_connected":
            return ServiceUnavailable(NOT_CONNECTED)
        case "reauthorize":
            return ServiceUnavailable(NEEDS_REAUTHORIZATION)
        case "payment":
            return UpstreamError(details={"reason": "the amoCRM account's paid period has ended"})
        case _:
            return UpstreamError()
