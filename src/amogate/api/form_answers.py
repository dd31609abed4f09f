"""How a form post is answered: JSON for scripts and servers, a page or a redirect for browsers.

A browser that submitted a plain HTML form (a navigation: `Sec-Fetch-Mode: navigate`, or an
`Accept` that asks for HTML without fetch's headers) gets a 303 to the form's success URL or a
small page in the visitor's language (uz, ru or en, from `Accept-Language`). fetch()/XHR,
Tilda's servers and every other caller get the JSON envelope.
"""

from __future__ import annotations

import html

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from amogate.api import envelope

LANGUAGES = ("uz", "ru", "en")
TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "thanks_title": "Thank you!",
        "thanks": "Your request has been received. We will contact you soon.",
        "error_title": "The form was not sent",
        "back": "Back",
    },
    "ru": {
        "thanks_title": "Спасибо!",
        "thanks": "Ваша заявка принята. Мы скоро свяжемся с вами.",
        "error_title": "Форма не отправлена",
        "back": "Назад",
    },
    "uz": {
        "thanks_title": "Rahmat!",
        "thanks": "Arizangiz qabul qilindi. Tez orada siz bilan bog'lanamiz.",
        "error_title": "Forma yuborilmadi",
        "back": "Orqaga",
    },
}

_PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:15vh auto;padding:0 1rem;
text-align:center;color:#222}}h1{{font-size:1.6rem}}</style></head>
<body><h1>{title}</h1><p>{text}</p>{back}</body></html>
"""


def wants_page(request: Request) -> bool:
    """Whether the post came from a plain HTML form (a page navigation), not from a script."""
    headers = request.headers
    mode = headers.get("sec-fetch-mode")
    if mode is not None:
        return mode == "navigate"
    if headers.get("x-requested-with"):
        return False
    return "text/html" in headers.get("accept", "")


def language(request: Request) -> str:
    """The first of uz/ru/en the visitor's browser asks for (by q-value), else en."""
    best, best_q = "en", -1.0
    for position, item in enumerate(request.headers.get("accept-language", "").split(",")[:20]):
        tag, _, params = item.strip().partition(";")
        code = tag.strip().lower().split("-")[0]
        if code not in LANGUAGES:
            continue
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        q -= position * 1e-6  # equal q-values: the first listed wins
        if q > best_q:
            best, best_q = code, q
    return best


def accepted(
    request: Request,
    *,
    success_url: str | None,
    data: dict[str, str],
    headers: dict[str, str],
    message: str,
) -> Response:
    if wants_page(request):
        if success_url:
            return RedirectResponse(success_url, status_code=303, headers=headers)
        texts = TEXTS[language(request)]
        return _page(request, texts["thanks_title"], texts["thanks"], 200, headers, back=False)
    return envelope.success(message, data, headers=headers)


def refused(
    request: Request,
    status_code: int,
    message: str,
    *,
    details: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    retry_after: float | None = None,
) -> Response:
    all_headers = dict(headers or {})
    if retry_after is not None:
        all_headers["Retry-After"] = str(max(1, int(retry_after + 0.999)))
    if wants_page(request):
        texts = TEXTS[language(request)]
        shown = "; ".join([message, *(details or {}).values()])
        return _page(request, texts["error_title"], shown, status_code, all_headers, back=True)
    return envelope.error(status_code, message, details, headers=all_headers)


def _page(
    request: Request,
    title: str,
    text: str,
    status_code: int,
    headers: dict[str, str],
    *,
    back: bool,
) -> HTMLResponse:
    lang = language(request)
    link = f'<p><a href="javascript:history.back()">{TEXTS[lang]["back"]}</a></p>' if back else ""
    body = _PAGE.format(lang=lang, title=html.escape(title), text=html.escape(text), back=link)
    headers = {**headers, "Content-Language": lang, "Vary": "Accept, Accept-Language, Origin"}
    return HTMLResponse(body, status_code=status_code, headers=headers)
