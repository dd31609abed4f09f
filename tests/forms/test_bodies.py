"""Reading form bodies: urlencoded, multipart and JSON, within limits."""

from __future__ import annotations

import json

import httpx
import pytest

from amogate.forms.bodies import MAX_BODY_BYTES, MAX_FIELDS, BodyError, parse_body


def test_urlencoded_keeps_order_blanks_and_utf8() -> None:
    raw = b"Name=Dilnoza+Karimova&Phone=%2B998901234567&izoh=&Shahar=%D0%A2%D0%BE%D1%88"
    body = parse_body("application/x-www-form-urlencoded; charset=UTF-8", raw)
    assert body.pairs == [
        ("Name", "Dilnoza Karimova"),
        ("Phone", "+998901234567"),
        ("izoh", ""),
        ("Shahar", "Тош"),
    ]


def test_multipart_reads_fields_and_notes_files_without_keeping_them() -> None:
    request = httpx.Request(
        "POST",
        "http://x",
        files={"name": (None, "Алишер"), "cv": ("cv.pdf", b"%PDF", "application/pdf")},
    )
    body = parse_body(request.headers["content-type"], request.read())
    assert body.pairs == [("name", "Алишер")]
    assert body.files == [("cv", "cv.pdf")]


def test_json_objects_are_flattened_to_dotted_names() -> None:
    raw = json.dumps({"name": "A", "answers": {"city": "Samarqand"}, "days": ["du", "se"]})
    body = parse_body("application/json", raw.encode())
    assert body.pairs == [("name", "A"), ("answers.city", "Samarqand"), ("days", "du, se")]


@pytest.mark.parametrize(
    ("content_type", "raw"),
    [
        ("application/json", b"[1, 2]"),
        ("application/json", b"{not json"),
        ("application/json", b"{" * 50 + b"}" * 50),
        ("application/x-www-form-urlencoded", b"\xff\xfe"),
        ("application/xml", b"<a/>"),
        ("multipart/form-data", b"--x--"),
        ("application/x-www-form-urlencoded", b"&".join([b"a=1"] * (MAX_FIELDS + 1))),
        ("application/x-www-form-urlencoded", b"a=" + b"x" * MAX_BODY_BYTES),
    ],
)
def test_unreadable_or_oversized_bodies_are_refused(content_type: str, raw: bytes) -> None:
    with pytest.raises(BodyError):
        parse_body(content_type, raw)


def test_json_sent_as_text_plain_is_read_as_json() -> None:
    body = parse_body("text/plain;charset=UTF-8", b' {"name": "A", "phone": "1"}')
    assert body.pairs == [("name", "A"), ("phone", "1")]
