"""Driving the admin page over HTTP like a browser: read the form's CSRF token, post it back."""

from __future__ import annotations

import re
from html import unescape

import httpx

ADMIN_PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "page has no CSRF field"
    return unescape(found.group(1))


async def sign_in(client: httpx.AsyncClient, password: str = ADMIN_PASSWORD) -> httpx.Response:
    page = await client.get("/admin/login")
    return await client.post(
        "/admin/login", data={"csrf": csrf_of(page.text), "password": password, "next": "/admin"}
    )


async def form_token(client: httpx.AsyncClient, path: str) -> str:
    """The CSRF token printed on a signed-in page."""
    page = await client.get(path)
    assert page.status_code == 200, page.text[:300]
    return csrf_of(page.text)
