"""How a form post is answered: a page for a browser's own form post, JSON for scripts, the
thank-you page's language from Accept-Language."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from amogate.api.form_answers import language, wants_page


def request(**headers: str) -> Request:
    raw = [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": raw})


@pytest.mark.parametrize(
    ("headers", "page"),
    [
        ({"Sec_Fetch_Mode": "navigate", "Accept": "text/html"}, True),
        ({"Sec_Fetch_Mode": "cors", "Accept": "text/html"}, False),
        ({"Sec_Fetch_Mode": "no-cors"}, False),
        ({"Accept": "text/html,application/xhtml+xml"}, True),  # an older browser
        ({"Accept": "text/html", "X_Requested_With": "XMLHttpRequest"}, False),
        ({"Accept": "application/json"}, False),
        ({}, False),  # Tilda's servers, curl
    ],
)
def test_only_a_browsers_own_form_post_gets_a_page(headers: dict[str, str], page: bool) -> None:
    assert wants_page(request(**headers)) is page


@pytest.mark.parametrize(
    ("accept_language", "lang"),
    [
        ("uz-UZ,uz;q=0.9,ru;q=0.8", "uz"),
        ("ru-RU,ru;q=0.9,en-US;q=0.8", "ru"),
        ("en-GB,en;q=0.9", "en"),
        ("de-DE,de;q=0.9,ru;q=0.5", "ru"),
        ("en;q=0.2,uz;q=0.8", "uz"),
        ("de-DE", "en"),
        ("", "en"),
    ],
)
def test_the_thank_you_page_speaks_the_visitors_language(accept_language: str, lang: str) -> None:
    assert language(request(Accept_Language=accept_language)) == lang
