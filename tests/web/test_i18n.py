"""English, Uzbek and Russian: a complete catalogue and the language choice."""

from __future__ import annotations

import string

import httpx
import pytest

from amogate.web.i18n import LANG_COOKIE, LANGUAGES, message_ids, negotiate, text


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_every_message_exists_in_every_language_with_the_same_placeholders(lang: str) -> None:
    for message_id in message_ids():
        translated = text(message_id, lang)
        assert translated.strip(), f"{message_id} is empty in {lang}"
        assert _placeholders(translated) == _placeholders(text(message_id, "en")), message_id


def test_the_language_is_taken_from_the_query_then_the_cookie_then_the_browser() -> None:
    assert negotiate("uz", "ru", "en") == "uz"
    assert negotiate(None, "ru", "uz-UZ,uz;q=0.9") == "ru"
    assert negotiate("xx", None, "ru-RU,ru;q=0.9,en;q=0.8") == "ru"
    assert negotiate(None, None, "de-DE,fr;q=0.5") == "en"


async def test_the_sign_in_page_speaks_uzbek_when_asked_and_remembers_it(
    admin_client: httpx.AsyncClient,
) -> None:
    response = await admin_client.get("/admin/login?lang=uz")
    assert '<html lang="uz">' in response.text
    assert "Parol" in response.text
    assert f"{LANG_COOKIE}=uz" in response.headers["set-cookie"]
    again = await admin_client.get("/admin/login")
    assert "Parol" in again.text


async def test_the_overview_speaks_russian_to_a_russian_browser(
    signed_in: httpx.AsyncClient,
) -> None:
    response = await signed_in.get("/admin", headers={"Accept-Language": "ru-RU,ru;q=0.9"})
    assert '<html lang="ru">' in response.text
    assert "Доставки за последние 24 ч" in response.text
    assert "Выйти" in response.text


async def test_the_disabled_page_is_translated_too(client: httpx.AsyncClient) -> None:
    response = await client.get("/admin?lang=ru")
    assert "Панель администратора выключена" in response.text
    assert "ADMIN_PASSWORD" in response.text


async def test_an_unknown_language_falls_back_to_english(admin_client: httpx.AsyncClient) -> None:
    response = await admin_client.get("/admin/login?lang=klingon")
    assert '<html lang="en">' in response.text
    assert LANG_COOKIE not in response.headers.get("set-cookie", "")


def _texts_shown_to_operators() -> list[str]:
    """What the worker, the info cache and the OAuth flow write for people, in English."""
    from datetime import UTC, datetime, timedelta

    from amogate import errors, failures
    from amogate.connection import advice
    from amogate.worker.retry import RetryPolicy

    now = datetime.now(UTC)
    gave_up = RetryPolicy().decide(
        "transient", attempt=9, now=now, give_up_at=now - timedelta(seconds=1), rand=lambda: 0.5
    )
    worker = [*failures.DESCRIPTIONS.values(), failures.UNKNOWN_DESCRIPTION]
    return [
        *worker,
        *(f"{message} (HTTP 503)" for message in worker),
        f"{gave_up.reason}; last error: {worker[0]} (HTTP 500)",
        "amoCRM rejected the lead",
        "amoCRM rejected the note",
        "the account has no such custom field or option",
        "amoCRM's answer did not list this lead",
        "amoCRM's answer did not list the note",
        "unsorted 5f1c2d, lead 10000001",
        "found unsorted 5f1c2d",
        errors.UNAVAILABLE,
        errors.RATE_LIMITED,
        errors.NOT_CONNECTED,
        errors.NEEDS_REAUTHORIZATION,
        advice.INVALID_CLIENT,
        advice.STATE_MISSING,
        advice.STATE_UNKNOWN,
        advice.EXCHANGE_UNAVAILABLE,
        advice.ACCESS_DENIED,
        advice.AMOCRM_REFUSED,
        advice.code_refused("Authorization code has expired"),
        "amoCRM connected",
        "amoCRM was not connected",
        "amogate is now connected to Sandbox savdo. Leads will be delivered there; you can "
        "close this page.",
    ]


@pytest.mark.parametrize("lang", ["uz", "ru"])
def test_every_text_other_parts_show_operators_is_translated(lang: str) -> None:
    from amogate.web.i18n import translate_text

    untranslated = [t for t in _texts_shown_to_operators() if translate_text(t, lang) == t]
    assert untranslated == []


def test_an_unknown_text_is_shown_as_it_is_and_english_stays_english() -> None:
    from amogate.web.i18n import translate_text

    assert translate_text("NotSupportedChoice", "ru") == "NotSupportedChoice"
    assert translate_text("amoCRM is unavailable (HTTP 502)", "en") == (
        "amoCRM is unavailable (HTTP 502)"
    )
    assert (
        translate_text("amoCRM is unavailable (HTTP 502)", "ru") == "amoCRM недоступен (HTTP 502)"
    )
