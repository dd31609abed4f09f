"""Structured logging: one JSON object per line (or readable console lines), secrets redacted.

Every line passes `redact` last before rendering, so tokens, keys, secrets, passwords,
Authorization headers and phone numbers (beyond their last 4 digits) never reach a log line,
whatever the caller put in the event. With LOG_ERRORS=true, errors are also appended to
`storage/error.log` like the original gateway did.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import structlog

REDACTED = "[redacted]"
_SECRET_KEY_PARTS = (
    "token",
    "secret",
    "password",
    "authorization",
    "api_key",
    "apikey",
    "x-api-key",
    "cookie",
)
_PHONE_KEY_PARTS = ("phone",)
# Bearer tokens, JWTs and amoCRM refresh tokens (def502...) inside free text.
_TOKEN_IN_TEXT = re.compile(
    r"(Bearer\s+)[A-Za-z0-9._~+/=-]+|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9._-]+|def50[0-9a-f]{20,}",
    re.IGNORECASE,
)
# A run of 7+ digits, optionally with +, spaces, dashes or brackets: a phone number in free text.
# Not inside a word: the digits of a hex id (a delivery id in error.log) are not a phone.
_PHONE_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])\+?\d[\d\s().-]{5,}\d(?![0-9A-Za-z])")


def mask_phone(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    if len(digits) <= 4:
        return "***"
    return "***" + digits[-4:]


def _is_secret_key(key: str) -> bool:
    lowered = key.lower()
    if lowered == "code" or lowered.endswith("auth_code"):  # OAuth authorization codes
        return True
    return any(part in lowered for part in _SECRET_KEY_PARTS)


def _scrub_text(text: str) -> str:
    text = _TOKEN_IN_TEXT.sub(lambda m: (m.group(1) or "") + REDACTED, text)
    return _PHONE_IN_TEXT.sub(lambda m: mask_phone(m.group(0)), text)


def _scrub(value: Any, key: str = "") -> Any:
    if key and _is_secret_key(key):
        return REDACTED if value not in (None, "", False) else value
    if key and any(part in key.lower() for part in _PHONE_KEY_PARTS) and isinstance(value, str):
        return mask_phone(value)
    if isinstance(value, str):
        return _scrub_text(value)
    if isinstance(value, Mapping):
        return {k: _scrub(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v, key) for v in value]
    return value


def redact(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """structlog processor: the last word before rendering."""
    for key in list(event_dict):
        if key in ("timestamp", "level", "logger"):
            continue
        event_dict[key] = _scrub(event_dict[key], key if key != "event" else "")
    return event_dict


def _iso(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: _iso(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_iso(v) for v in value]
    return value


def iso_times(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """structlog processor: dates and times become ISO 8601 strings, so a log line is data
    (`"retry_at": "2026-01-02T03:04:05+00:00"`), never a Python repr. Runs after `redact`,
    which leaves datetime objects alone but would read an ISO string's digits as a phone."""
    for key, value in event_dict.items():
        event_dict[key] = _iso(value)
    return event_dict


def configure_logging(
    *,
    log_format: str = "json",
    level: str = "INFO",
    error_log_path: Path | None = None,
    stream: Any = None,
) -> None:
    """Route structlog and stdlib logging (uvicorn, sqlalchemy) through one redacting pipeline."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        # filter_by_level first: a line below LOG_LEVEL costs a level check, not a rendering.
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            redact,
            iso_times,
            renderer,
        ],
    )
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_amogate", False):
            root.removeHandler(handler)
    console = logging.StreamHandler(stream or sys.stderr)
    console.setFormatter(formatter)
    console._amogate = True  # type: ignore[attr-defined]
    root.addHandler(console)
    if error_log_path is not None:
        try:
            error_log_path.parent.mkdir(parents=True, exist_ok=True)
            file_handler = logging.FileHandler(error_log_path, encoding="utf-8")
        except OSError:
            file_handler = None
        if file_handler is not None:
            file_handler.setLevel(logging.ERROR)
            json_formatter = structlog.stdlib.ProcessorFormatter(
                foreign_pre_chain=shared,
                processors=[
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    redact,
                    iso_times,
                    structlog.processors.JSONRenderer(ensure_ascii=False),
                ],
            )
            file_handler.setFormatter(json_formatter)
            file_handler._amogate = True  # type: ignore[attr-defined]
            root.addHandler(file_handler)
    root.setLevel(level)
    for noisy in ("uvicorn.access", "httpx", "httpcore", "aiosqlite", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
