"""amoCRM errors, sorted by what the caller should do.

    AmoError                         base: ``status``, short ``detail``, ``body_excerpt``
    ├── AmoTransientError            try again later; carries ``retry_after``
    │   ├── AmoRateLimitedError      429: slow down, honour ``retry_after``
    │   ├── AmoTimeoutError          timeouts, 504: the outcome of a write is unknown
    │   └── AmoUnavailableError      connection refused/reset, 502/503
    ├── AmoPermanentError            400 and other 4xx: resending the same data will fail again
    ├── AmoAuthError                 401 that a refresh cannot fix: re-authorize
    │   └── AmoRefreshRevokedError   the refresh token was used, revoked or expired
    ├── AmoBlockedError              403: stop calling the account, alert a human
    ├── AmoPaymentError              402: the account's paid period ended
    └── AmoNotFoundError             404 (or 204 on a single-entity read)

``error_from_response`` and ``error_from_exception`` are the only places where amoCRM answers
and transport failures become these errors.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

BODY_EXCERPT_LIMIT = 2048
_DETAIL_LIMIT = 200


@dataclass(frozen=True, slots=True)
class FieldError:
    code: str
    path: str
    detail: str


@dataclass(frozen=True, slots=True)
class ItemValidationErrors:
    """amoCRM's complaints about one item of a batch, keyed by the item's ``request_id``."""

    request_id: str
    errors: list[FieldError]


class AmoError(Exception):
    def __init__(
        self, detail: str, *, status: int | None = None, body_excerpt: str | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.body_excerpt = body_excerpt

    def __str__(self) -> str:
        return f"amoCRM {self.status}: {self.detail}" if self.status else self.detail

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, detail={self.detail!r})"


class AmoTransientError(AmoError):
    """Worth retrying later. ``maybe_applied`` is False only when amoCRM surely did nothing."""

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        body_excerpt: str | None = None,
        retry_after: float | None = None,
        maybe_applied: bool = True,
    ) -> None:
        super().__init__(detail, status=status, body_excerpt=body_excerpt)
        self.retry_after = retry_after
        self.maybe_applied = maybe_applied


class AmoRateLimitedError(AmoTransientError):
    pass


class AmoTimeoutError(AmoTransientError):
    pass


class AmoUnavailableError(AmoTransientError):
    pass


class AmoPermanentError(AmoError):
    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        body_excerpt: str | None = None,
        validation_errors: list[ItemValidationErrors] | None = None,
    ) -> None:
        super().__init__(detail, status=status, body_excerpt=body_excerpt)
        self.validation_errors = validation_errors or []


class AmoAuthError(AmoError):
    pass


class AmoRefreshRevokedError(AmoAuthError):
    pass


class AmoBlockedError(AmoError):
    """403. ``blocked_for`` is the remaining local cool-down in seconds, when known."""

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        body_excerpt: str | None = None,
        blocked_for: float | None = None,
    ) -> None:
        super().__init__(detail, status=status, body_excerpt=body_excerpt)
        self.blocked_for = blocked_for


class AmoPaymentError(AmoError):
    pass


class AmoNotFoundError(AmoError):
    pass


def error_from_response(response: httpx.Response, *, oauth: bool = False) -> AmoError:
    """Map an amoCRM answer the caller cannot use; ``oauth`` marks ``/oauth2/access_token``.

    Besides error statuses this covers a 204 where an object was expected (not found) and a
    2xx whose body is not the expected JSON (unavailable: typically a proxy page).
    """
    status = response.status_code
    body = _json_object(response)
    detail = _detail(response, body)
    excerpt = body_excerpt(response)
    if status == 204:  # reached only when an object was expected: nothing is there
        return AmoNotFoundError("no content", status=status)
    if 200 <= status < 300:  # a success we cannot read, e.g. a proxy's HTML page
        return AmoUnavailableError("unreadable answer", status=status, body_excerpt=excerpt)
    if oauth and status in (400, 401):
        # league/oauth2-server: a bad refresh token is a 401 with a hint, a bad client has none.
        if status == 401 and body is not None and body.get("hint"):
            hint = _short(str(body["hint"]))
            return AmoRefreshRevokedError(hint, status=status, body_excerpt=excerpt)
        return AmoAuthError(detail, status=status, body_excerpt=excerpt)
    if status == 400:
        errors = _validation_errors(body)
        return AmoPermanentError(
            detail, status=status, body_excerpt=excerpt, validation_errors=errors
        )
    if status == 401:
        return AmoAuthError(detail, status=status, body_excerpt=excerpt)
    if status == 402:
        return AmoPaymentError(detail, status=status, body_excerpt=excerpt)
    if status == 403:
        return AmoBlockedError(detail, status=status, body_excerpt=excerpt)
    if status == 404:
        return AmoNotFoundError(detail, status=status, body_excerpt=excerpt)
    if status == 429:
        return AmoRateLimitedError(
            detail,
            status=status,
            body_excerpt=excerpt,
            retry_after=_retry_after(response, body),
            maybe_applied=False,
        )
    if status in (502, 503):
        retry_after = _retry_after(response, body)
        return AmoUnavailableError(
            detail, status=status, body_excerpt=excerpt, retry_after=retry_after
        )
    if status in (408, 504):
        return AmoTimeoutError(detail, status=status, body_excerpt=excerpt)
    if status >= 500:
        return AmoTransientError(detail, status=status, body_excerpt=excerpt)
    return AmoPermanentError(detail, status=status, body_excerpt=excerpt)


def error_from_exception(exc: httpx.HTTPError) -> AmoError:
    """Map a transport failure (nothing, or nothing usable, came back)."""
    detail = _short(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return AmoTimeoutError(detail, maybe_applied=False)
    if isinstance(exc, httpx.TimeoutException):
        return AmoTimeoutError(detail)
    if isinstance(exc, httpx.ConnectError):
        return AmoUnavailableError(detail, maybe_applied=False)
    if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError | httpx.ProxyError):
        return AmoUnavailableError(detail)
    return AmoPermanentError(detail)


_SECRET_PATTERNS = (
    (re.compile(r"eyJ[\w-]{4,}\.[\w-]+\.[\w-]*"), "[redacted]"),
    (re.compile(r"def50200[0-9a-fA-F]+"), "[redacted]"),
    (
        re.compile(r'("(?:access_token|refresh_token|client_secret)"\s*:\s*)"[^"]*"'),
        r'\1"[redacted]"',
    ),
)


def body_excerpt(response: httpx.Response) -> str | None:
    """At most ``BODY_EXCERPT_LIMIT`` characters of the body, with anything token-like removed."""
    try:
        text = response.text
    except (httpx.ResponseNotRead, UnicodeDecodeError):
        return None
    if not text:
        return None
    text = text[: BODY_EXCERPT_LIMIT * 2]
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text[:BODY_EXCERPT_LIMIT]


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        parsed = json.loads(response.content)
    except (ValueError, httpx.ResponseNotRead):
        return None
    return parsed if isinstance(parsed, dict) else None


_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def _detail(response: httpx.Response, body: dict[str, Any] | None) -> str:
    if body is not None:
        for key in ("detail", "title", "hint"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return _short(value)
    try:
        match = _HTML_TITLE.search(response.text)
    except httpx.ResponseNotRead:
        match = None
    if match and match.group(1).strip():
        return _short(" ".join(match.group(1).split()))
    return response.reason_phrase or f"HTTP {response.status_code}"


def _short(text: str) -> str:
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 1] + "…"


def _validation_errors(body: dict[str, Any] | None) -> list[ItemValidationErrors]:
    raw = body.get("validation-errors") if body is not None else None
    if not isinstance(raw, list):
        return []
    items: list[ItemValidationErrors] = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict):
            continue
        errors = [
            FieldError(
                code=str(error.get("code", "")),
                path=str(error.get("path", "")),
                detail=str(error.get("detail", "")),
            )
            for error in entry.get("errors") or []
            if isinstance(error, dict)
        ]
        items.append(ItemValidationErrors(str(entry.get("request_id", index)), errors))
    return items


def _retry_after(response: httpx.Response, body: dict[str, Any] | None) -> float | None:
    header = response.headers.get("Retry-After")
    if header:
        seconds = _seconds(header)
        if seconds is not None:
            return seconds
        try:
            when = parsedate_to_datetime(header)
        except (TypeError, ValueError):
            when = None
        if when is not None and when.tzinfo is not None:
            return max(0.0, when.timestamp() - time.time())
    if body is not None:
        return _seconds(body.get("retry_after"))
    return None


def _seconds(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, seconds) if seconds == seconds else None  # NaN is not a delay
