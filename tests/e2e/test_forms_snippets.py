"""docs/forms.md's snippets, run as written against a real gateway, the amoCRM sandbox and
Chromium: the pages are served from their own origins (one the form allows, one it does not),
so the browser's own rules (Origin, CORS preflight, redirects) are what is tested."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.docs.walkthrough import matches
from tests.forms.support import amo_get, sandbox_leads
from tests.security.support import Deployment, deployment, wait_until
from tests.support.processes import gateway_env

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.slow

DOC = Path(__file__).resolve().parents[2] / "docs" / "forms.md"
SNIPPET = re.compile(r"<!-- snippet: ([\w-]+) -->\n```\w+\n(.*?)^```$", re.MULTILINE | re.DOTALL)
DOC_GATEWAY = "https://gateway.example.uz"
DOC_ENDPOINT = DOC_GATEWAY + "/api/v1/forms/frm_YOUR_FORM_ID"
DOC_SITE = "https://site.uz"
WAIT_MS = 15_000


def snippets() -> dict[str, str]:
    return dict(SNIPPET.findall(DOC.read_text(encoding="utf-8")))


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@dataclass
class Site:
    """A static web site on its own origin (127.0.0.1 and its own port)."""

    folder: Path
    server: ThreadingHTTPServer

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def page(self, name: str, body: str) -> str:
        html = f'<!doctype html><html><head><meta charset="utf-8"></head><body>{body}</body></html>'
        (self.folder / name).write_text(html, encoding="utf-8")
        return f"{self.origin}/{name}"


@dataclass
class Stack:
    gateway: Deployment
    site: Site  # the form's origin
    other: Site  # a site the form does not allow
    endpoints: dict[str, str]

    def localise(self, text: str, endpoint: str) -> str:
        return (
            text.replace(DOC_ENDPOINT, endpoint)
            .replace(DOC_GATEWAY, self.gateway.url)
            .replace(DOC_SITE, self.site.origin)
        )

    def run_console(self, snippet: str, endpoint: str = "") -> str:
        """Run a console snippet's commands as written; returns what the last one printed.
        Each command's output must match the lines the doc shows after it."""
        env = {**gateway_env(self.gateway.folder), "PATH": _path()}
        output = ""
        lines = self.localise(snippet, endpoint).splitlines()
        commands: list[tuple[str, list[str]]] = []
        for line in lines:
            if line.startswith("$ "):
                commands.append((line[2:], []))
            elif line.strip():
                commands[-1][1].append(line)
        for command, expected in commands:
            done = subprocess.run(
                ["bash", "-c", command],
                cwd=self.gateway.folder,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            output = done.stdout + done.stderr
            assert matches(expected, output), f"$ {command}\n{output}"
        return output


def _path() -> str:
    return f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


def _site(folder: Path) -> Site:
    folder.mkdir(parents=True, exist_ok=True)
    handler = partial(_Quiet, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return Site(folder, server)


def endpoint_in(output: str, gateway_url: str) -> str:
    path = next(line for line in output.splitlines() if line.startswith("/api/v1/forms/"))
    return gateway_url + path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("forms-e2e")
    site, other = _site(folder / "site"), _site(folder / "other")
    site.page("thanks.html", "<h1>Thank you page of the site</h1>")
    (folder / "gateway").mkdir()
    try:
        with deployment(folder / "gateway", FORM_RATE_PER_MINUTE="100") as d:
            assert d.connect().status_code == 200
            stack = Stack(d, site, other, {})
            created = stack.run_console(snippets()["create"])
            stack.endpoints["landing"] = endpoint_in(created, d.url)
            yield stack
    finally:
        for server in (site.server, other.server):
            server.shutdown()
            server.server_close()


def lead_named(stack: Stack, name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    def arrived() -> bool:
        found[:] = [lead for lead in sandbox_leads(stack.gateway) if lead["name"] == name]
        return bool(found)

    wait_until(arrived, what=f"lead {name!r} in the sandbox")
    return found[0]


def notes_of(stack: Stack, lead_id: int) -> list[dict[str, Any]]:
    """The lead's notes, once there (a lead is in amoCRM before its note: notes go in batches)."""
    found: list[dict[str, Any]] = []

    def arrived() -> bool:
        answer = amo_get(stack.gateway, f"/api/v4/leads/{lead_id}/notes")
        found[:] = answer["_embedded"]["notes"] if answer else []
        return bool(found)

    wait_until(arrived, what=f"a note on lead {lead_id}")
    return found


def stored(stack: Stack) -> int:
    return int(stack.gateway.rows("SELECT count(*) FROM deliveries")[0][0])


def test_every_snippet_of_the_page_is_exercised() -> None:
    assert set(snippets()) == {
        "create",
        "html",
        "fetch",
        "tilda-create",
        "tilda-check",
        "cf7",
        "google-forms",
    }


def test_a_plain_html_form_on_another_origin_lands_on_the_success_url(
    stack: Stack, browser: Browser
) -> None:
    url = stack.site.page(
        "form.html", stack.localise(snippets()["html"], stack.endpoints["landing"])
    )
    page = browser.new_page()
    try:
        page.goto(url)
        page.fill("input[name=name]", "Shahnoza Browser")
        page.fill("input[name=phone]", "90 555 11 22")
        page.fill("textarea[name=comment]", "Qo'ng'iroq qiling")
        page.click("button[type=submit]")
        page.wait_for_url(f"{stack.site.origin}/thanks.html", timeout=WAIT_MS)
        assert "Thank you page of the site" in page.content()
    finally:
        page.close()
    lead = lead_named(stack, "Landing: Shahnoza Browser")
    assert [t["name"] for t in lead["_embedded"]["tags"]] == ["landing"]
    contacts = amo_get(stack.gateway, f"/api/v4/leads/{lead['id']}", **{"with": "contacts"})
    contact_id = contacts["_embedded"]["contacts"][0]["id"]
    contact = amo_get(stack.gateway, f"/api/v4/contacts/{contact_id}")
    phones = [
        v["value"]
        for f in contact["custom_fields_values"]
        if f["field_code"] == "PHONE"
        for v in f["values"]
    ]
    assert phones == ["+998905551122"]


def test_a_plain_html_form_without_success_url_thanks_the_visitor_in_their_language(
    stack: Stack, browser: Browser
) -> None:
    output = stack.run_console(
        snippets()["create"]
        .replace('"Landing"', '"Russian thanks"')
        .replace(" --success-url https://site.uz/thanks.html", "")
        .replace("'Landing'", "'Russian thanks'")
    )
    endpoint = endpoint_in(output, stack.gateway.url)
    url = stack.site.page("form-ru.html", stack.localise(snippets()["html"], endpoint))
    context = browser.new_context(locale="ru-RU")
    try:
        page = context.new_page()
        page.goto(url)
        page.fill("input[name=name]", "Ольга")
        page.fill("input[name=phone]", "+998901110000")
        page.click("button[type=submit]")
        page.wait_for_selector("text=Спасибо!", timeout=WAIT_MS)
        assert page.url == endpoint
    finally:
        context.close()
    lead_named(stack, "Russian thanks: Ольга")


def test_fetch_works_on_the_allowed_origin_and_cors_refuses_it_elsewhere(
    stack: Stack, browser: Browser
) -> None:
    html = stack.localise(snippets()["fetch"], stack.endpoints["landing"])
    allowed_url = stack.site.page("fetch.html", html)
    refused_url = stack.other.page("fetch.html", html)
    page = browser.new_page()
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    try:
        page.goto(allowed_url)
        page.fill("input[name=name]", "Fetch Allowed")
        page.fill("input[name=phone]", "+998901230001")
        page.click("button[type=submit]")
        page.wait_for_selector("#lead-form-status:has-text('Rahmat!')", timeout=WAIT_MS)

        before = stored(stack)
        page.goto(refused_url)
        page.fill("input[name=name]", "Fetch Refused")
        page.fill("input[name=phone]", "+998901230002")
        page.click("button[type=submit]")
        page.wait_for_selector("#lead-form-status:has-text('Yuborilmadi')", timeout=WAIT_MS)
    finally:
        page.close()
    assert any("CORS" in m for m in messages), messages
    lead_named(stack, "Landing: Fetch Allowed")
    assert stored(stack) == before
    names = [lead["name"] for lead in sandbox_leads(stack.gateway)]
    assert "Landing: Fetch Refused" not in names


def test_tildas_set_up_and_check_run_as_written(stack: Stack) -> None:
    created = stack.run_console(snippets()["tilda-create"])
    endpoint = endpoint_in(created, stack.gateway.url)
    before = stored(stack)
    stack.run_console(snippets()["tilda-check"], endpoint)
    assert stored(stack) == before
    answer = httpx.post(endpoint, data={"Name": "Tilda Odam", "Phone": "901234567"}, timeout=10)
    assert answer.status_code == 200
    lead = lead_named(stack, "Tilda: Tilda Odam")
    assert [t["name"] for t in lead["_embedded"]["tags"]] == ["tilda"]


def test_the_contact_form_7_snippet_posts_the_sent_form(stack: Stack, browser: Browser) -> None:
    script = stack.localise(snippets()["cf7"], stack.endpoints["landing"])
    url = stack.site.page("cf7.html", script)
    page = browser.new_page()
    try:
        page.goto(url)
        # What Contact Form 7 dispatches after its mail went out.
        page.evaluate(
            """() => document.dispatchEvent(new CustomEvent('wpcf7mailsent', {detail: {inputs: [
                {name: 'your-name', value: 'Wordpress Mijoz'},
                {name: 'your-email', value: 'mijoz@example.uz'},
                {name: 'your-tel', value: '+998 93 000 11 22'},
                {name: 'your-message', value: 'Salom'},
                {name: 'kurs', value: 'Python'},
            ]}}))"""
        )
        lead = lead_named(stack, "Landing: Wordpress Mijoz")
    finally:
        page.close()
    notes = notes_of(stack, lead["id"])
    text = notes[0]["params"]["text"]
    assert "Salom" in text
    assert "kurs: Python" in text


def test_the_google_forms_script_posts_the_answers(stack: Stack, browser: Browser) -> None:
    output = stack.run_console(
        snippets()["tilda-create"]
        .replace('"Tilda"', '"Google Forms"')
        .replace("'Tilda'", "'Google Forms'")
    )
    endpoint = endpoint_in(output, stack.gateway.url)
    script = stack.localise(snippets()["google-forms"], endpoint)
    page = browser.new_page()
    try:
        # Apps Script's UrlFetchApp and a form-submit event, recorded in a blank page; the
        # request UrlFetchApp would send is then sent from here (from a server: no Origin).
        calls = page.evaluate(
            """(script) => {
              const calls = [];
              const UrlFetchApp = {fetch: (url, options) => { calls.push({url, options}); }};
              const answers = [['Ismingiz', 'Google Mijoz'], ['Telefon raqamingiz', '901112299'],
                               ['Qaysi kurs?', 'Dizayn']];
              const e = {response: {
                getId: () => 'google-response-1',
                getItemResponses: () => answers.map(([title, answer]) => ({
                  getItem: () => ({getTitle: () => title}), getResponse: () => answer})),
              }};
              new Function('UrlFetchApp', 'e', script + '\\nonFormSubmit(e);')(UrlFetchApp, e);
              return calls;
            }""",
            script,
        )
    finally:
        page.close()
    assert len(calls) == 1
    call = calls[0]
    assert call["url"] == endpoint
    assert call["options"]["method"] == "post"
    for _ in range(2):  # a retried trigger: the same response id makes no second lead
        answer = httpx.post(call["url"], data=call["options"]["payload"], timeout=10)
        assert answer.status_code == 200
    lead = lead_named(stack, "Google Forms: Google Mijoz")
    notes = notes_of(stack, lead["id"])
    assert "Qaysi kurs?: Dizayn" in notes[0]["params"]["text"]
    names = [lead["name"] for lead in sandbox_leads(stack.gateway)]
    assert names.count("Google Forms: Google Mijoz") == 1
