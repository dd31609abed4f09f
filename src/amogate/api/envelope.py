"""The original gateway's JSON envelope, in one place.

Success: {"success": true, "message": ..., "data": {...}}   (data omitted when empty)
Error:   {"success": false, "error": ..., "details": {...}} (details omitted when empty)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from fastapi.responses import JSONResponse

# Starlette's JSONResponse already writes UTF-8 without ASCII escapes, so Uzbek and Russian text
# stays readable; this alias documents that the envelope relies on it.
EnvelopeResponse = JSONResponse


def success(
    message: str,
    data: Any = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"success": True, "message": message}
    if data is not None and data != {}:
        body["data"] = data
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status_code, headers=dict(headers or {}))


def error(
    status_code: int,
    message: str,
    details: Mapping[str, Any] | None = None,
    *,
    retry_after: float | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"success": False, "error": message}
    if details:
        body["details"] = dict(details)
    all_headers = dict(headers or {})
    if retry_after is not None:
        all_headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return JSONResponse(body, status_code=status_code, headers=all_headers)
