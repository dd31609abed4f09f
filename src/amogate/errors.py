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
tokens or keys. The one place that renders them is `amogate.api.errors`. `upstream_status` keeps
amoCRM's HTTP status behind an upstream failure for the records and logs (never rendered).
"""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    status_code = 500
    message = "An unexpected error occurred"

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        retry_after: float | None = None,
        upstream_status: int | None = None,
    ) -> None:
        self.message = message or type(self).message
        self.details = details or {}
        self.retry_after = retry_after
        self.upstream_status = upstream_status
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
