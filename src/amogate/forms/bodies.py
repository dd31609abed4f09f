"""A form post's body as a list of (field, value) pairs, whatever the form sent it as.

`application/x-www-form-urlencoded` (plain HTML forms, Tilda), `multipart/form-data` (forms with
a file input, Contact Form 7, Elementor) and JSON (fetch() from a landing page; nested objects
are flattened to dotted names). Files are never kept: their field and file name are noted.
Limits keep a hostile body cheap: a cap on the bytes (checked by the caller while reading), on
the number of fields, on a name's and a value's length.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

MAX_BODY_BYTES = 256 * 1024
MAX_FIELDS = 200
MAX_NAME = 200
MAX_VALUE = 10_000
MAX_DEPTH = 8

Pairs = list[tuple[str, str]]


class BodyError(ValueError):
    """The body cannot be read as a form (the message says why, for the 400 answer)."""


@dataclass(frozen=True)
class FormBody:
    pairs: Pairs
    files: list[tuple[str, str]]  # (field, file name) of files sent and not kept


def parse_body(content_type: str, raw: bytes) -> FormBody:
    """Read `raw` by its Content-Type; raises `BodyError` for what cannot be read."""
    if len(raw) > MAX_BODY_BYTES:
        raise BodyError(f"Form body larger than {MAX_BODY_BYTES} bytes")
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "multipart/form-data":
        return _multipart(content_type, raw)
    if kind in ("application/json", "text/json") or kind.endswith("+json"):
        return FormBody(_limited(_flatten(_json(raw))), [])
    if kind == "text/plain" and raw.lstrip()[:1] == b"{":
        # JSON sent as text/plain: a script's way to post without a CORS preflight.
        return FormBody(_limited(_flatten(_json(raw))), [])
    if kind in ("application/x-www-form-urlencoded", "text/plain", ""):
        return FormBody(_urlencoded(raw), [])
    raise BodyError(
        "Unsupported Content-Type: send application/x-www-form-urlencoded, "
        "multipart/form-data or application/json"
    )


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError("Body is not valid UTF-8") from None


def _urlencoded(raw: bytes) -> Pairs:
    try:
        pairs = parse_qsl(
            _text(raw).strip(),
            keep_blank_values=True,
            max_num_fields=MAX_FIELDS,
            strict_parsing=False,
        )
    except ValueError:
        raise BodyError(f"More than {MAX_FIELDS} fields") from None
    return _limited(pairs)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(_text(raw))
    except (json.JSONDecodeError, RecursionError):
        raise BodyError("Body is not valid JSON") from None


def _flatten(value: Any, prefix: str = "", depth: int = 0) -> Pairs:
    if depth > MAX_DEPTH:
        raise BodyError(f"JSON nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        pairs: Pairs = []
        for key, item in value.items():
            pairs += _flatten(item, f"{prefix}.{key}" if prefix else str(key), depth + 1)
            if len(pairs) > MAX_FIELDS:
                raise BodyError(f"More than {MAX_FIELDS} fields")
        return pairs
    if not prefix:
        raise BodyError("A JSON body must be an object of fields")
    if isinstance(value, list):
        if all(not isinstance(item, (dict, list)) for item in value):
            return [(prefix, ", ".join(_scalar(item) for item in value))]
        pairs = []
        for index, item in enumerate(value):
            pairs += _flatten(item, f"{prefix}.{index}", depth + 1)
        return pairs
    return [(prefix, _scalar(value))]


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _multipart(content_type: str, raw: bytes) -> FormBody:
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise BodyError("multipart/form-data without a boundary")
    parts = _Parts()
    parser = MultipartParser(boundary, parts.callbacks())  # type: ignore[arg-type]
    try:
        parser.write(raw)
        parser.finalize()
    except MultipartParseError:
        raise BodyError("multipart/form-data body could not be read") from None
    if not parts.finished:
        raise BodyError("multipart/form-data body could not be read")
    pairs: Pairs = []
    files: list[tuple[str, str]] = []
    for disposition, data in parts.items:
        _, params = parse_options_header(disposition)
        name = params.get(b"name")
        if name is None:
            continue
        field = name.decode("utf-8", "replace")
        filename = params.get(b"filename")
        if filename is not None:
            files.append((field[:MAX_NAME], filename.decode("utf-8", "replace")[:MAX_NAME]))
            continue
        try:
            pairs.append((field, data.decode("utf-8")))
        except UnicodeDecodeError:
            raise BodyError("A multipart field is not valid UTF-8") from None
    return FormBody(_limited(pairs), files)


class _Parts:
    """Collects (Content-Disposition, body) of each part from python-multipart's callbacks."""

    def __init__(self) -> None:
        self.items: list[tuple[bytes, bytes]] = []
        self.finished = False
        self._header = b""
        self._value = b""
        self._disposition = b""
        self._data: list[bytes] = []

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _begin(self) -> None:
        if len(self.items) >= MAX_FIELDS:
            raise BodyError(f"More than {MAX_FIELDS} fields")
        self._disposition, self._data = b"", []
        self._header, self._value = b"", b""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        if self._header.lower() == b"content-disposition":
            self._disposition = self._value
        self._header, self._value = b"", b""

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        self._data.append(data[start:end])

    def _part_end(self) -> None:
        self.items.append((self._disposition, b"".join(self._data)))

    def _end(self) -> None:
        self.finished = True


def _limited(pairs: list[tuple[str, str]]) -> Pairs:
    if len(pairs) > MAX_FIELDS:
        raise BodyError(f"More than {MAX_FIELDS} fields")
    return [(name.strip()[:MAX_NAME], value[:MAX_VALUE]) for name, value in pairs]
