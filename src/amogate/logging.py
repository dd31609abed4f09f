"""Structured logging: one JSON object per line (or readable console lines), secrets redacted.

Every line passes `redact` last before rendering, so tokens, keys, secrets, passwords,
Authorization headers, phone numbers (beyond their last 4 digits) and email addresses (beyond
their first letter and domain) never reach a log line, whatever the caller put in the event.
In free text a phone is told from an id by its shape: a run of digits glued to letters, `-`,
`_`, `/`, `:`, `.` or `=` is part of an id, a request id, an address, a port or a URL and stays
as it is, so those remain greppable.

With LOG_ERRORS=true, errors are also appended to `storage/error.log` like the original gateway
did — through a handler that reopens the file when logrotate moves it away, and that starts a
new file (keeping one old one, `error.log.1`) past ERROR_LOG_MAX_BYTES.
"""

from __future__ import annotations

import logging
import logging.handlers
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
_EMAIL_KEY_PARTS = ("email",)
# Bearer tokens, JWTs and amoCRM refresh tokens (def502...) inside free text.
_TOKEN_IN_TEXT = re.compile(
    r"(Bearer\s+)[A-Za-z0-9._~+/=-]+|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9._-]+|def50[0-9a-f]{20,}",
    re.IGNORECASE,
)
# A phone in free text, not glued to an id, a URL, an address or a port on either side:
# "+998 90 123-45-67", "+998901234567", "8 (901) 234-56-78", "90 123 45 67", "998901234567".
# Digits with separators (space, dash, brackets) need 7+ digits and a separator; a bare run
# needs 11+ digits (a number with its country code), so ids of up to 10 digits stay readable.
_NOT_GLUED_BEFORE = r"(?<![\w/:=.@%#&?+-])"
_NOT_GLUED_AFTER = r"(?![\w/:=@%-]|\.\w)"
_PHONE_IN_TEXT = re.compile(
    # "+998 ...": the plus says phone, also right after "tel:" or "phone=".
    r"(?<![\w+])\+\(?\d[\d\s()-]{5,}\d"
    + _NOT_GLUED_AFTER
    + "|"
    + _NOT_GLUED_BEFORE
    + r"(?!\d{4}-\d{2}-\d{2})"  # a date, not a phone
    + r"(?:\(?\d[\d()-]*[\s()-][\d\s()-]*\d"  # 90 123-45-67, 8 (901) 234-56-78
    + r"|\d{11,15})"  # 998901234567
    + _NOT_GLUED_AFTER
)
_EMAIL_IN_TEXT = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@([A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+)"
)
_MIN_PHONE_DIGITS = 7


def mask_phone(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    if len(digits) <= 4:
        return "***"
    return "***" + digits[-4:]


def mask_email(value: str) -> str:
    """a***@example.com: enough to tell two addresses apart, not enough to write to one."""
    local, at, domain = value.rpartition("@")
    if not at:
        return "***"
    return (local[:1] or "") + "***@" + domain


def _mask_phone_match(match: re.Match[str]) -> str:
    text = match.group(0)
    if sum(ch.isdigit() for ch in text) < _MIN_PHONE_DIGITS:
        return text
    return mask_phone(text)


def _is_secret_key(key: str) -> bool:
    lowered = key.lower()
    if lowered == "code" or lowered.endswith("auth_code"):  # OAuth authorization codes
        return True
    return any(part in lowered for part in _SECRET_KEY_PARTS)


def _scrub_text(text: str) -> str:
    text = _TOKEN_IN_TEXT.sub(lambda m: (m.group(1) or "") + REDACTED, text)
    if "@" in text:
        text = _EMAIL_IN_TEXT.sub(lambda m: mask_email(m.group(0)), text)
    return _PHONE_IN_TEXT.sub(_mask_phone_match, text)


def _scrub(value: Any, key: str = "") -> Any:
    if key and _is_secret_key(key):
        return REDACTED if value not in (None, "", False) else value
    if key and isinstance(value, str):
        lowered = key.lower()
        if any(part in lowered for part in _PHONE_KEY_PARTS):
            return mask_phone(value)
        if any(part in lowered for part in _EMAIL_KEY_PARTS):
            return mask_email(value) if "@" in value else _scrub_text(value)
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


class BoundedWatchedFileHandler(logging.handlers.WatchedFileHandler):
    """Appends to a file that logrotate may move away at any time (reopened when the path no
    longer names the open file), and that never grows past `max_bytes`: the full file is moved
    to `<name>.1` (replacing the previous one) and a new one is started."""

    def __init__(self, filename: Path, *, max_bytes: int) -> None:
        super().__init__(filename, encoding="utf-8")
        self.max_bytes = max_bytes

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.reopenIfNeeded()
            if self.stream is not None and self.stream.tell() >= self.max_bytes:
                self._start_new_file()
        except OSError:
            self.handleError(record)
            return
        logging.FileHandler.emit(self, record)

    def _start_new_file(self) -> None:
        path = Path(self.baseFilename)
        # As logrotate would: move the full file aside, then reopen (a failed move keeps the
        # current file open, so nothing is lost).
        path.replace(path.with_name(path.name + ".1"))
        self.reopenIfNeeded()


class _AlreadyLogged(logging.Filter):
    """uvicorn logs every exception an app lets through ("Exception in ASGI application"),
    after the gateway's own handler logged it with its request id (`request.unexpected_error`):
    drop the second, id-less copy of the same traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Exception in ASGI application")


def configure_logging(
    *,
    log_format: str = "json",
    level: str = "INFO",
    error_log_path: Path | None = None,
    error_log_max_bytes: int = 10 * 1024 * 1024,
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
            file_handler: logging.Handler | None = BoundedWatchedFileHandler(
                error_log_path, max_bytes=error_log_max_bytes
            )
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
    uvicorn_errors = logging.getLogger("uvicorn.error")
    for old in [f for f in uvicorn_errors.filters if isinstance(f, _AlreadyLogged)]:
        uvicorn_errors.removeFilter(old)
    uvicorn_errors.addFilter(_AlreadyLogged())
