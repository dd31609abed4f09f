"""amoCRM's response forms: HAL JSON for success, problem JSON for errors, nginx HTML pages.

Bodies follow amocrm-api.md §3: `application/hal+json` on success, `application/problem+json`
with `title`, `type` (`https://httpstatus.es/{status}`), `status`, `detail` on errors.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from starlette.responses import Response

HAL = "application/hal+json"
PROBLEM = "application/problem+json"
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
}


class ApiError(Exception):
    """Raised anywhere in a handler to answer with `response` instead."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def dumps(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def hal(data: Any, status: int = 200) -> Response:
    return Response(dumps(data), status_code=status, media_type=HAL)


def plain_json(data: Any, status: int = 200) -> Response:
    return Response(dumps(data), status_code=status, media_type="application/json")


def no_content() -> Response:
    return Response(status_code=204)


def problem(status: int, detail: str, **extra: Any) -> Response:
    body: dict[str, Any] = {
        "title": TITLES.get(status, "Error"),
        "type": f"https://httpstatus.es/{status}",
        "status": status,
        "detail": detail,
    }
    body.update(extra)
    return Response(dumps(body), status_code=status, media_type=PROBLEM)


def raw_problem(status: int, body: dict[str, Any]) -> Response:
    return Response(dumps(body), status_code=status, media_type=PROBLEM)


def unauthorized() -> Response:
    return problem(401, "Invalid user name or password")


def server_error() -> Response:
    return raw_problem(
        500,
        {
            "title": "ErrInternalServer",
            "status": 500,
            "detail": "Internal server error",
            "trace_id": secrets.token_hex(16),
        },
    )


def too_many_requests(retry_after: int) -> Response:
    return problem(
        429,
        "You have sent too many requests in a given amount of time. Please try again later.",
        retry_after=retry_after,
    )


def nginx_page(status: int) -> Response:
    """The bare nginx error page amoCRM's front end returns on blocks and some 429s."""
    reason = {403: "403 Forbidden", 429: "429 Too Many Requests"}.get(status, str(status))
    text = (
        f"<html>\r\n<head><title>{reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    )
    return Response(text, status_code=status, media_type="text/html")
