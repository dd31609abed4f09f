"""Jinja2 rendering for the admin page, and the headers every admin answer carries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    pass_context,
    select_autoescape,
)
from jinja2.runtime import Context
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from amogate.web.i18n import (
    LANG_COOKIE,
    LANGUAGES,
    Translator,
    has_message,
    negotiate,
    translatable,
    translate_text,
    translator,
)

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
LANG_COOKIE_MAX_AGE = 365 * 24 * 3600

# Pages hold secrets (a new key) and act on the account: never cached, never framed, and only
# our own script and style run (there is no inline script or style to allow).
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


def format_time(value: datetime | None, zone: tzinfo = UTC) -> Markup:
    """A moment in the account's time zone, with UTC on hover (and in `datetime`)."""
    if value is None:
        return Markup("—")
    utc = value.astimezone(UTC)
    return Markup('<time datetime="{iso}" title="{utc}">{local}</time>').format(
        iso=utc.isoformat(timespec="seconds"),
        utc=utc.strftime("%Y-%m-%d %H:%M:%S UTC"),
        local=value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
    )


@pass_context
def _time_filter(context: Context, value: datetime | None) -> Markup:
    zone = context.get("zone")
    return format_time(value, zone if isinstance(zone, tzinfo) else UTC)


def pretty_json(value: Any) -> str:
    """Readable JSON: indented, Uzbek and Russian text left as it is (escaped for HTML later)."""
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str)


def format_age(seconds: float, t: Translator) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return t("age.seconds", n=seconds)
    if seconds < 3600:
        return t("age.minutes", n=seconds // 60)
    if seconds < 86400:
        return t("age.hours", n=seconds // 3600)
    return t("age.days", n=seconds // 86400)


def relative(value: datetime | None, t: Translator, now: datetime) -> str:
    """ "in 5 min" / "3 h ago"."""
    if value is None:
        return ""
    delta = (value - now).total_seconds()
    if delta >= 0:
        return t("time.in", age=format_age(delta, t))
    return t("time.ago", age=format_age(-delta, t))


class Pages:
    def __init__(self) -> None:
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["time"] = _time_filter
        self.env.filters["pretty"] = pretty_json

    def render(
        self,
        request: Request,
        template: str,
        *,
        lang: str,
        status: int = 200,
        csrf: str | None = None,
        signed_in: bool = False,
        headers: dict[str, str] | None = None,
        zone: tzinfo = UTC,
        **context: Any,
    ) -> HTMLResponse:
        t = translator(lang)
        now = datetime.now(UTC)
        context.setdefault("nav", "")
        html = self.env.get_template(template).render(
            t=t,
            lang=lang,
            languages=LANGUAGES,
            path=request.url.path,
            lang_link=lambda code: "?" + urlencode({**request.query_params, "lang": code}),
            csrf=csrf,
            signed_in=signed_in,
            now=now,
            age=lambda seconds: format_age(seconds, t),
            relative=lambda value: relative(value, t, now),
            zone=zone,
            text=lambda value: translate_text(value, lang),
            known=lambda value: bool(value) and translatable(value),
            # A recorded kind (attempt step, outcome) in words; an unknown one as it is.
            label=lambda prefix, value: (
                t(f"{prefix}.{value}") if has_message(f"{prefix}.{value}") else value
            ),
            **context,
        )
        response = HTMLResponse(html, status_code=status, headers=headers)
        secure_headers(response)
        remember_language(request, response, lang)
        return response

    def message(
        self,
        request: Request,
        title: str,
        text: str,
        *,
        status: int,
        ok: bool,
        admin: bool,
        action: tuple[str, str] | None = None,
    ) -> HTMLResponse:
        """A one-message page in the admin page's style and the admin's language (the OAuth
        callback's answer). `title` and `text` are amogate's English texts, translated when
        the catalogue knows them; `action` is a next step (a link and its message id)."""
        lang = negotiate(
            None, request.cookies.get(LANG_COOKIE), request.headers.get("accept-language")
        )
        html = self.env.get_template("message.html").render(
            lang=lang,
            t=translator(lang),
            title=translate_text(title, lang),
            text=translate_text(text, lang),
            ok=ok,
            admin=admin,
            action=action,
        )
        response = HTMLResponse(html, status_code=status)
        secure_headers(response)
        return response


def secure_headers(response: Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def remember_language(request: Request, response: Response, lang: str) -> None:
    """An explicit `?lang=` is kept in a cookie so the next pages use it too."""
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(
            LANG_COOKIE,
            lang,
            max_age=LANG_COOKIE_MAX_AGE,
            # Site-wide: the OAuth callback page speaks the admin's language too.
            path="/",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
