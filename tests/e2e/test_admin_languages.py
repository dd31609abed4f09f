"""The admin page in Chromium in English, Uzbek and Russian: no English text amogate knows is
left on an Uzbek or Russian page (errors, attempt steps and outcomes included), times are in
the account's time zone with UTC on hover, the OAuth callback answers in the admin's language,
and /docs renders with every other host blocked."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from amogate.amocrm.sandbox.runner import SandboxServer
from amogate.web.i18n import LANGUAGES, known_english_texts, message_ids, text
from tests.support.processes import free_port, running_gateway

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.slow

ADMIN_PASSWORD = "e2e languages password 1234"
API_KEY = "test-admin-key-0123456789"
WAIT_MS = 15_000
TASHKENT = timedelta(hours=5)  # the sandbox account's time zone (no daylight saving)
# Codes the page used to show as they are stored.
RAW_CODES = ("transient", "rate_limited", "permanent", "reconcile")


def english_phrases() -> list[str]:
    """Every fixed English text amogate shows (placeholders split off), except those that are
    the same in every language (`HTTP`, `amoCRM`)."""
    same_everywhere = {
        text(m, "en") for m in message_ids() if len({text(m, lang) for lang in LANGUAGES}) == 1
    }
    phrases = set(RAW_CODES)
    for english in known_english_texts():
        if english in same_everywhere:
            continue
        for part in re.split(r"\{[^}]*\}", english):
            part = part.strip(" .,:;()—-·")
            if len(part) >= 3 and re.search(r"[a-z]{2}", part) and part != "amoCRM":
                phrases.add(part)
    return sorted(phrases)


def english_left(page: Page) -> list[str]:
    """The known English phrases visible on the page, outside data shown as it is
    (`.verbatim`: payloads, ids, amoCRM's own answers)."""
    shown: str = page.evaluate(
        """() => {
            const copy = document.body.cloneNode(true);
            copy.querySelectorAll('.verbatim, [lang="en"]').forEach(e => e.remove());
            return copy.innerText;
        }"""
    )
    return [p for p in english_phrases() if re.search(rf"(?<!\w){re.escape(p)}(?!\w)", shown)]


@dataclass(frozen=True)
class Stack:
    url: str
    sandbox_url: str
    delivered: str
    failed: str
    waiting: str


def _lead(url: str, name: str, **lead: Any) -> httpx.Response:
    body = {
        "lead": {"name": name, **lead},
        "contact": {"name": "Jasur Karimov", "phone": "90 987-65-43", "email": "jasur@example.uz"},
    }
    return httpx.post(
        f"{url}/api/v1/leads/unsorted", json=body, headers={"X-API-KEY": API_KEY}, timeout=30
    )


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, browser: Browser, screenshots: Path
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("admin-languages")
    port = free_port()
    redirect_uri = f"http://127.0.0.1:{port}/oauth/callback"
    with (
        SandboxServer(rate_limit=0, redirect_uri=redirect_uri) as sb,
        running_gateway(
            tmp,
            port=port,
            ADMIN_PASSWORD=ADMIN_PASSWORD,
            AMO_BASE_URL=sb.url,
            AMO_CLIENT_ID=sb.config.client_id,
            AMO_CLIENT_SECRET=sb.config.client_secret,
            AMO_REDIRECT_URI=redirect_uri,
            LEAD_SYNC_TIMEOUT="5",
            DELIVERY_RETRY_BASE_SECONDS="30",
        ) as url,
    ):
        # Connected by an Uzbek-speaking admin: the callback page answers in Uzbek.
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{url}/admin/login?lang=uz")
        page.fill("#password", ADMIN_PASSWORD)
        page.click("button[type=submit]")
        page.click("#connect")
        page.click("#allow")
        page.wait_for_url(re.compile(r"/oauth/callback"))
        assert page.get_attribute("html", "lang") == "uz"
        assert page.inner_text("h1") == "amoCRM ulandi"
        assert "amogate endi Sandbox savdo ga ulandi" in page.inner_text("#message")
        # The admin page's stylesheet applies (its dark header bar).
        header = "getComputedStyle(document.querySelector('header.top')).backgroundColor"
        assert page.evaluate(header) not in ("rgba(0, 0, 0, 0)", "transparent")
        page.screenshot(path=str(screenshots / "oauth-callback-uz.png"))
        page.click("#admin-link")  # back to the overview, which learns the account's zone
        assert page.inner_text("#timezone") == "Asia/Tashkent"
        context.close()

        delivered = _lead(url, "Oshxona mebeli")
        assert delivered.status_code == 200, delivered.text
        # amoCRM refuses the next lead as a whole (a 400 naming no field): it ends failed.
        httpx.post(
            f"{sb.url}/_sandbox/faults",
            json={"mode": "400", "count": 1, "path_prefix": "/api/v4/leads/unsorted/forms"},
        ).raise_for_status()
        failed = _lead(url, "Divan buyurtmasi")
        assert failed.status_code == 422, failed.text
        httpx.post(
            f"{sb.url}/_sandbox/faults", json={"mode": "500", "duration_s": 600}
        ).raise_for_status()
        waiting = _lead(url, "Konditsioner o'rnatish")
        assert waiting.status_code == 202, waiting.text
        yield Stack(
            url,
            sb.url,
            delivered.json()["data"]["delivery_id"],
            _newest_failed(url),
            waiting.json()["data"]["delivery_id"],
        )


def _newest_failed(url: str) -> str:
    """The failed delivery's id (a 422 answer carries none), as an operator finds it."""
    with httpx.Client(base_url=url) as client:
        login = client.get("/admin/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', login.text)
        assert csrf is not None
        client.post(
            "/admin/login",
            data={"csrf": csrf.group(1), "password": ADMIN_PASSWORD, "next": "/admin"},
        )
        listed = client.get("/admin/deliveries?state=failed")
    found = re.search(r'<tr data-id="([0-9a-f]{32})"', listed.text)
    assert found is not None, listed.text
    return found.group(1)


@pytest.fixture(scope="module")
def signed_in(browser: Browser, stack: Stack) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{stack.url}/admin/login")
    page.fill("#password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{stack.url}/admin")
    yield page
    context.close()


def pages(stack: Stack) -> list[str]:
    return [
        "/admin",
        "/admin/deliveries",
        f"/admin/deliveries/{stack.delivered}",
        f"/admin/deliveries/{stack.failed}",
        f"/admin/deliveries/{stack.waiting}",
        "/admin/keys",
    ]


@pytest.mark.parametrize("lang", ["uz", "ru"])
def test_no_english_text_is_left_on_uzbek_and_russian_pages(
    signed_in: Page, stack: Stack, lang: str, screenshots: Path
) -> None:
    for path in pages(stack):
        signed_in.goto(f"{stack.url}{path}?lang={lang}")
        assert signed_in.get_attribute("html", "lang") == lang
        assert english_left(signed_in) == [], path
    signed_in.goto(f"{stack.url}/admin/deliveries/{stack.waiting}?lang={lang}")
    signed_in.screenshot(path=str(screenshots / f"delivery-retrying-{lang}.png"), full_page=True)
    signed_in.goto(f"{stack.url}/admin?lang={lang}")
    signed_in.screenshot(path=str(screenshots / f"overview-outage-{lang}.png"), full_page=True)
    # A signed-out page too.
    context = signed_in.context.browser
    assert context is not None
    anonymous = context.new_page()
    anonymous.goto(f"{stack.url}/admin/login?lang={lang}")
    assert english_left(anonymous) == []
    anonymous.close()


def test_the_english_pages_show_the_phrases_the_check_looks_for(
    signed_in: Page, stack: Stack
) -> None:
    """The check above is not vacuous: the same pages in English show those phrases."""
    found: set[str] = set()
    for path in pages(stack):
        signed_in.goto(f"{stack.url}{path}?lang=en")
        found.update(english_left(signed_in))
    for phrase in ("Overview", "temporary failure", "amoCRM is unavailable", "rejected", "form"):
        assert phrase in found, phrase


def test_a_retrying_delivery_reads_in_russian_with_its_request_as_sent(
    signed_in: Page, stack: Stack
) -> None:
    signed_in.goto(f"{stack.url}/admin/deliveries/{stack.waiting}?lang=ru")
    assert signed_in.inner_text("#delivery-state") == "повтор"
    assert signed_in.inner_text("#last-error") == "amoCRM недоступен (HTTP 500)"
    attempts = signed_in.inner_text("#attempts")
    assert "форма" in attempts
    assert "временный сбой" in attempts
    received = signed_in.inner_text("#received")
    normalised = signed_in.inner_text("#request")
    assert "••-65-43" in received.replace(" ", "") or "•• •••-65-43" in received
    assert "987" not in received
    assert "+••••••••6543" in normalised


def test_the_overview_says_amocrm_is_not_answering_and_times_are_in_tashkent(
    signed_in: Page, stack: Stack
) -> None:
    signed_in.goto(f"{stack.url}/admin?lang=ru")
    assert signed_in.inner_text("#timezone") == "Asia/Tashkent"
    warning = signed_in.inner_text("#reachability")
    assert warning.startswith("amoCRM не отвечает с ")
    assert "(последняя попытка: HTTP 500)" in warning
    assert "warn" in (signed_in.get_attribute("#connection-state", "class") or "")
    moment = signed_in.locator("#reachability time")
    utc = datetime.fromisoformat(moment.get_attribute("datetime") or "")
    assert moment.inner_text() == (utc + TASHKENT).strftime("%Y-%m-%d %H:%M:%S")
    assert moment.get_attribute("title") == utc.strftime("%Y-%m-%d %H:%M:%S UTC")


def test_docs_render_with_every_other_host_blocked(browser: Browser, stack: Stack) -> None:
    context = browser.new_context()
    elsewhere: list[str] = []

    def only_the_gateway(route: Any) -> None:
        if route.request.url.startswith(stack.url):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_gateway)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{stack.url}/docs")
    page.wait_for_selector(".opblock")
    assert page.locator(".opblock").count() > 5
    assert "amogate" in page.inner_text(".title")
    context.close()
    assert elsewhere == []
