"""Who gets in: the disabled page, sign-in, its rate limits, the session cookie's flags, and
how sessions end (lifetime, log-out, a new password)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from amogate.access.sessions import LOGIN_COOKIE, SESSION_COOKIE, SESSION_TTL
from amogate.app import create_app
from amogate.settings import Settings
from amogate.web.routes import LOGIN_LIMIT, AdminSite
from tests.conftest import open_app
from tests.web.helpers import ADMIN_PASSWORD, csrf_of, sign_in

ADMIN_PATHS = ["/admin", "/admin/login", "/admin/deliveries", "/admin/keys", "/admin/deliveries/x"]


@pytest.mark.parametrize("path", ADMIN_PATHS)
async def test_without_admin_password_every_admin_page_only_says_how_to_enable_it(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 403
    assert "ADMIN_PASSWORD" in response.text
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


async def test_without_admin_password_no_form_can_be_posted(client: httpx.AsyncClient) -> None:
    response = await client.post("/admin/login", data={"password": "", "csrf": ""})
    assert response.status_code == 403
    assert "ADMIN_PASSWORD" in response.text


async def test_pages_send_a_visitor_without_a_session_to_sign_in(
    admin_client: httpx.AsyncClient,
) -> None:
    response = await admin_client.get("/admin/deliveries?state=failed")
    assert response.status_code == 303
    assert (
        response.headers["location"] == "/admin/login?next=%2Fadmin%2Fdeliveries%3Fstate%3Dfailed"
    )


async def test_a_wrong_password_is_refused_and_gives_no_session(
    admin_client: httpx.AsyncClient,
) -> None:
    response = await sign_in(admin_client, "not the password")
    assert response.status_code == 401
    assert "Wrong password." in response.text
    assert (await admin_client.get("/admin")).status_code == 303


async def test_the_right_password_opens_the_overview(admin_client: httpx.AsyncClient) -> None:
    response = await sign_in(admin_client)
    assert response.status_code == 303
    assert response.headers["location"] == "/admin"
    overview = await admin_client.get("/admin")
    assert overview.status_code == 200
    assert "Deliveries in the last 24 h" in overview.text


async def test_signing_in_returns_to_the_page_asked_for_but_never_to_another_site(
    admin_client: httpx.AsyncClient,
) -> None:
    page = await admin_client.get("/admin/login")
    token = csrf_of(page.text)
    response = await admin_client.post(
        "/admin/login", data={"csrf": token, "password": ADMIN_PASSWORD, "next": "//evil.example"}
    )
    assert response.headers["location"] == "/admin"
    token = csrf_of((await admin_client.get("/admin")).text)
    await admin_client.post("/admin/logout", data={"csrf": token})
    page = await admin_client.get("/admin/login")
    response = await admin_client.post(
        "/admin/login",
        data={"csrf": csrf_of(page.text), "password": ADMIN_PASSWORD, "next": "/admin/keys"},
    )
    assert response.headers["location"] == "/admin/keys"


def _set_cookie(response: httpx.Response, name: str) -> set[str]:
    """The flags of the Set-Cookie header for `name` (lower-cased)."""
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            return {part.strip().lower() for part in header.split(";")[1:]}
    raise AssertionError(f"no Set-Cookie for {name}")


async def test_the_session_cookie_is_httponly_and_strict(
    admin_client: httpx.AsyncClient,
) -> None:
    response = await sign_in(admin_client)
    flags = _set_cookie(response, SESSION_COOKIE)
    # Path "/": /oauth/authorize (the Connect button) needs the session too.
    assert {"httponly", "samesite=strict", "path=/", f"max-age={SESSION_TTL}"} <= flags
    assert "secure" not in flags  # plain http: a Secure cookie would never come back


async def test_the_session_cookie_is_secure_over_https(admin_settings: Settings) -> None:
    app = create_app(admin_settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://gateway.test"
        ) as client,
    ):
        response = await sign_in(client)
        assert "secure" in _set_cookie(response, SESSION_COOKIE)
        assert (await client.get("/admin")).status_code == 200


async def test_a_forged_session_cookie_is_not_accepted(admin_client: httpx.AsyncClient) -> None:
    await sign_in(admin_client)
    genuine = admin_client.cookies[SESSION_COOKIE]
    payload, signature = genuine.split(".")
    admin_client.cookies.clear()
    admin_client.cookies.set(SESSION_COOKIE, f"{payload}.{signature[:-2]}AA", path="/")
    assert (await admin_client.get("/admin")).status_code == 303


async def test_a_session_ends_after_its_lifetime(
    admin_client: httpx.AsyncClient, admin_site: AdminSite
) -> None:
    await sign_in(admin_client)
    site = admin_site
    issued = site.clock()
    site.clock = lambda: issued + SESSION_TTL + 1
    assert (await admin_client.get("/admin")).status_code == 303


async def test_changing_the_admin_password_signs_everyone_out(
    settings_factory: Callable[..., Settings],
) -> None:
    async for first in open_app(create_app(settings_factory(admin_password=ADMIN_PASSWORD))):
        await sign_in(first)
        cookie = first.cookies[SESSION_COOKIE]
    async for second in open_app(create_app(settings_factory(admin_password="another password!"))):
        second.cookies.set(SESSION_COOKIE, cookie, path="/")
        assert (await second.get("/admin")).status_code == 303


async def test_restarting_with_the_same_password_keeps_sessions(
    settings_factory: Callable[..., Settings],
) -> None:
    async for first in open_app(create_app(settings_factory(admin_password=ADMIN_PASSWORD))):
        await sign_in(first)
        cookie = first.cookies[SESSION_COOKIE]
    async for second in open_app(create_app(settings_factory(admin_password=ADMIN_PASSWORD))):
        second.cookies.set(SESSION_COOKIE, cookie, path="/")
        assert (await second.get("/admin")).status_code == 200


async def test_logging_out_ends_the_session(signed_in: httpx.AsyncClient) -> None:
    token = csrf_of((await signed_in.get("/admin")).text)
    response = await signed_in.post("/admin/logout", data={"csrf": token})
    assert response.status_code == 303
    assert (await signed_in.get("/admin")).status_code == 303


async def test_logging_out_ends_every_session_even_a_copied_cookie(
    signed_in: httpx.AsyncClient,
) -> None:
    copied = signed_in.cookies[SESSION_COOKIE]
    token = csrf_of((await signed_in.get("/admin")).text)
    await signed_in.post("/admin/logout", data={"csrf": token})
    signed_in.cookies.clear()
    signed_in.cookies.set(SESSION_COOKIE, copied, path="/")
    assert (await signed_in.get("/admin")).status_code == 303


async def test_the_sign_in_pages_cookie_is_no_session(admin_client: httpx.AsyncClient) -> None:
    page = await admin_client.get("/admin/login")
    assert SESSION_COOKIE not in admin_client.cookies
    flags = _set_cookie(page, LOGIN_COOKIE)
    assert {"httponly", "samesite=strict", "path=/admin"} <= flags
    admin_client.cookies.set(SESSION_COOKIE, admin_client.cookies[LOGIN_COOKIE], path="/")
    assert (await admin_client.get("/admin")).status_code == 303


async def test_a_sign_in_form_from_another_browser_is_refused(
    admin_client: httpx.AsyncClient,
) -> None:
    page = await admin_client.get("/admin/login")
    token = csrf_of(page.text)
    admin_client.cookies.clear()  # the form's token without the cookie it belongs to
    response = await admin_client.post(
        "/admin/login", data={"csrf": token, "password": ADMIN_PASSWORD, "next": "/admin"}
    )
    assert response.status_code == 403
    assert SESSION_COOKIE not in admin_client.cookies


@pytest.fixture
def one_minute(admin_site: AdminSite) -> None:
    """Every attempt of the test in one counting window (a slow machine may otherwise cross
    into the next minute halfway)."""
    now = time.time()
    admin_site.clock = lambda: now


@pytest.mark.usefixtures("one_minute")
async def test_sign_in_attempts_are_limited_per_address_even_with_the_right_password(
    admin_client: httpx.AsyncClient,
) -> None:
    for _ in range(LOGIN_LIMIT):
        assert (await sign_in(admin_client, "guess")).status_code == 401
    response = await sign_in(admin_client)
    assert response.status_code == 429
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert "Too many sign-in attempts" in response.text
    assert (await admin_client.get("/admin")).status_code == 303


@pytest.mark.usefixtures("one_minute")
async def test_a_successful_sign_in_does_not_count_against_the_limit(
    admin_client: httpx.AsyncClient,
) -> None:
    for _ in range(LOGIN_LIMIT - 1):
        assert (await sign_in(admin_client, "guess")).status_code == 401
    for _ in range(LOGIN_LIMIT + 2):
        assert (await sign_in(admin_client)).status_code == 303
        admin_client.cookies.clear()
    assert (await sign_in(admin_client, "guess")).status_code == 401
    assert (await sign_in(admin_client, "guess")).status_code == 429


async def test_the_sign_in_limit_is_shared_by_instances_using_one_database(
    admin_settings: Settings,
) -> None:
    first, second = create_app(admin_settings), create_app(admin_settings)
    now = time.time()
    for app in (first, second):
        app.state.admin.clock = lambda: now  # one counting window for the whole test
    async for a in open_app(first):
        async for b in open_app(second):
            for client in (a, b, a, b, a):
                assert (await sign_in(client, "guess")).status_code == 401
            assert (await sign_in(b)).status_code == 429


async def test_the_sign_in_limit_resets_in_the_next_minute(
    admin_client: httpx.AsyncClient, admin_site: AdminSite
) -> None:
    site = admin_site
    start = 1_800_000_000.0
    site.clock = lambda: start
    for _ in range(LOGIN_LIMIT):
        await sign_in(admin_client, "guess")
    assert (await sign_in(admin_client)).status_code == 429
    site.clock = lambda: start + 60
    assert (await sign_in(admin_client)).status_code == 303
