"""Public forms through real processes: a gateway in front of the amoCRM sandbox, forms made
with `amogate forms create`, posts shaped like Tilda's, a plain HTML form's and a script's, and
the leads read back through the sandbox's amoCRM API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.forms.support import (
    CAPTCHA_SECRET,
    GOOD_TOKEN,
    amo_get,
    captcha_verifier,
    create_form,
    delivery,
    sandbox_leads,
    unsorted_forms_posted,
    wait_delivered,
)
from tests.security.support import Deployment, deployment

pytestmark = pytest.mark.slow

TILDA_COOKIES = (
    "TILDAUTM=utm_source%3Dgoogle%7C%7C%7Cutm_medium%3Dcpc%7C%7C%7Cutm_campaign%3Dspring_sale"
    "%7C%7C%7C; tildasid=123; _ym_uid=1700000000"
)


def tilda_post(tranid: str = "4410000:1234567") -> dict[str, str]:
    """What Tilda's webhook sends for a form with Name, Phone and Email (urlencoded)."""
    return {
        "Name": "Dilnoza Karimova",
        "Phone": "+998 (90) 123-45-67",
        "Email": "dilnoza@example.uz",
        "Shahar": "Toshkent",
        "Kompaniya": "Navoi Savdo MChJ",
        "tranid": tranid,
        "formid": "form123456789",
        "COOKIES": TILDA_COOKIES,
    }


@pytest.fixture(scope="module")
def verifier_url() -> Iterator[str]:
    with captcha_verifier() as url:
        yield url


@pytest.fixture
def gateway(tmp_path: Path, verifier_url: str) -> Iterator[Deployment]:
    with deployment(tmp_path, CAPTCHA_VERIFY_URL=verifier_url, FORM_RATE_PER_MINUTE="10") as d:
        assert d.connect().status_code == 200
        yield d


def accepted(answer: httpx.Response) -> str:
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["success"] is True
    delivery_id: str = body["data"]["delivery_id"]
    return delivery_id


def custom_value(entity: dict[str, Any], code: str) -> Any:
    for item in entity.get("custom_fields_values") or []:
        if item.get("field_code") == code:
            return item["values"][0]["value"]
    return None


def test_a_tilda_post_becomes_a_lead_with_an_e164_phone_utm_in_tracking_fields_and_the_rest_in_the_note(  # noqa: E501
    gateway: Deployment,
) -> None:
    endpoint = create_form(
        gateway,
        "Tilda landing",
        *("--rate-per-minute", "100", "--tag", "tilda", "--map", "Kompaniya=field:Kompaniya nomi"),
    )
    started = time.monotonic()
    answer = httpx.post(endpoint, data=tilda_post(), timeout=10)
    assert time.monotonic() - started < 5
    found = wait_delivered(gateway, accepted(answer))

    lead = amo_get(gateway, f"/api/v4/leads/{found['amocrm']['lead_id']}", **{"with": "contacts"})
    assert lead["name"] == "Tilda landing: Dilnoza Karimova"
    assert custom_value(lead, "UTM_SOURCE") == "google"
    assert custom_value(lead, "UTM_MEDIUM") == "cpc"
    assert custom_value(lead, "UTM_CAMPAIGN") == "spring_sale"
    assert [t["name"] for t in lead["_embedded"]["tags"]] == ["tilda"]
    company = [
        f["values"][0]["value"]
        for f in lead["custom_fields_values"]
        if f["field_name"] == "Kompaniya nomi"
    ]
    assert company == ["Navoi Savdo MChJ"]
    contact = amo_get(gateway, f"/api/v4/contacts/{found['amocrm']['contact_id']}")
    assert contact["name"] == "Dilnoza Karimova"
    assert custom_value(contact, "PHONE") == "+998901234567"
    assert custom_value(contact, "EMAIL") == "dilnoza@example.uz"
    notes = amo_get(gateway, f"/api/v4/leads/{lead['id']}/notes")["_embedded"]["notes"]
    text = notes[0]["params"]["text"]
    assert "Shahar: Toshkent" in text
    assert "formid: form123456789" in text
    assert "utm_source: google" in text
    assert "tildasid" not in text  # the cookie string itself is not the visitor's words


def test_the_same_tranid_again_makes_no_second_lead(gateway: Deployment) -> None:
    endpoint = create_form(gateway, "Tilda", "--rate-per-minute", "100")
    first = accepted(httpx.post(endpoint, data=tilda_post("77:1"), timeout=10))
    wait_delivered(gateway, first)
    again = accepted(httpx.post(endpoint, data=tilda_post("77:1"), timeout=10))
    assert again == first
    other = accepted(httpx.post(endpoint, data=tilda_post("77:2"), timeout=10))
    wait_delivered(gateway, other)
    assert len(sandbox_leads(gateway)) == 2
    assert unsorted_forms_posted(gateway) == 2


def test_tildas_test_request_is_answered_200_and_stores_nothing(gateway: Deployment) -> None:
    endpoint = create_form(gateway, "Tilda")
    before = gateway.table_counts()
    answer = httpx.post(endpoint, data={"test": "test"}, timeout=10)
    assert answer.status_code == 200
    assert answer.json()["success"] is True
    after = gateway.table_counts()
    assert after["deliveries"] == before["deliveries"] == 0
    assert after["form_submissions"] == 0


def test_a_multipart_post_becomes_a_lead(gateway: Deployment) -> None:
    endpoint = create_form(gateway, "Builder")
    answer = httpx.post(
        endpoint,
        files={
            "your-name": (None, "Alisher Navoi"),
            "your-tel": (None, "90 111 22 33"),
            "izoh": (None, "Narxi qancha?"),
            "cv": ("cv.pdf", b"%PDF-1.4 ...", "application/pdf"),
        },
        timeout=10,
    )
    found = wait_delivered(gateway, accepted(answer))
    contact = amo_get(gateway, f"/api/v4/contacts/{found['amocrm']['contact_id']}")
    assert contact["name"] == "Alisher Navoi"
    assert custom_value(contact, "PHONE") == "+998901112233"
    notes = amo_get(gateway, f"/api/v4/leads/{found['amocrm']['lead_id']}/notes")
    text = notes["_embedded"]["notes"][0]["params"]["text"]
    assert "Narxi qancha?" in text
    assert "cv: cv.pdf" in text


def test_a_json_post_puts_click_ids_and_utm_into_tracking_fields(gateway: Deployment) -> None:
    endpoint = create_form(gateway, "Landing")
    body = {
        "ism": "Jasur",
        "telefon": "+998 93 555 66 77",
        "gclid": "Cj0KCQ-test",
        "fbclid": "IwAR-test",
        "utm_source": "facebook",
        "answers": {"kurs": "Python"},
    }
    found = wait_delivered(gateway, accepted(httpx.post(endpoint, json=body, timeout=10)))
    lead = amo_get(gateway, f"/api/v4/leads/{found['amocrm']['lead_id']}")
    assert custom_value(lead, "GCLID") == "Cj0KCQ-test"
    assert custom_value(lead, "FBCLID") == "IwAR-test"
    assert custom_value(lead, "UTM_SOURCE") == "facebook"
    notes = amo_get(gateway, f"/api/v4/leads/{lead['id']}/notes")["_embedded"]["notes"]
    assert "answers.kurs: Python" in notes[0]["params"]["text"]


def test_a_honeypot_post_is_answered_like_success_and_reaches_nothing_in_amocrm(
    gateway: Deployment,
) -> None:
    endpoint = create_form(gateway, "Landing")
    answer = httpx.post(
        endpoint, data={"name": "Bot", "phone": "+998901234567", "_gotcha": "http://spam"}
    )
    spam_id = accepted(answer)
    # A bot that fills nothing but the honeypot is answered the same way.
    accepted(httpx.post(endpoint, data={"_gotcha": "x", "website": "http://spam"}))
    # A real lead after it is delivered, so the worker has had its chance at the spam one.
    real = accepted(httpx.post(endpoint, data={"name": "Odam", "phone": "+998907654321"}))
    wait_delivered(gateway, real)
    assert delivery(gateway, spam_id)["status"] == "spam"
    assert [lead["name"] for lead in sandbox_leads(gateway)] == ["Landing: Odam"]
    assert unsorted_forms_posted(gateway) == 1


def test_the_eleventh_post_in_a_minute_from_one_address_is_429(gateway: Deployment) -> None:
    endpoint = create_form(gateway, "Landing")
    codes = [
        httpx.post(endpoint, data={"phone": f"+99890123450{i % 10}"}, timeout=10).status_code
        for i in range(11)
    ]
    if codes[-1] != 429:  # the minute turned over during the burst: once more, fresh window
        codes = [
            httpx.post(endpoint, data={"phone": "+998901234500"}, timeout=10).status_code
            for _ in range(11)
        ]
    assert codes[:10] == [200] * 10
    refused = httpx.post(endpoint, data={"phone": "+998901234500"}, timeout=10)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1


def test_a_forms_own_limit_replaces_the_default(gateway: Deployment) -> None:
    endpoint = create_form(gateway, "Strict", "--rate-per-minute", "2")
    codes = [
        httpx.post(endpoint, data={"phone": "+998901234500"}, timeout=10).status_code
        for _ in range(3)
    ]
    if codes != [200, 200, 429]:  # the minute turned over during the burst: once more
        codes = [
            httpx.post(endpoint, data={"phone": "+998901234500"}, timeout=10).status_code
            for _ in range(3)
        ][-1:]
        assert codes == [429]
    else:
        assert codes == [200, 200, 429]


def test_a_captcha_form_refuses_a_bad_token_and_accepts_a_good_one(gateway: Deployment) -> None:
    endpoint = create_form(
        gateway, "Protected", "--captcha", "turnstile", "--captcha-secret", CAPTCHA_SECRET
    )
    bad = httpx.post(
        endpoint,
        data={"name": "Bot", "phone": "+998901234567", "cf-turnstile-response": "forged"},
        timeout=10,
    )
    assert bad.status_code == 403
    assert bad.json()["error"] == "Captcha verification failed"
    missing = httpx.post(endpoint, data={"name": "Bot", "phone": "+998901234567"}, timeout=10)
    assert missing.status_code == 403
    good = httpx.post(
        endpoint,
        data={"name": "Odam", "phone": "+998901234567", "cf-turnstile-response": GOOD_TOKEN},
        timeout=10,
    )
    wait_delivered(gateway, accepted(good))
    assert gateway.table_counts()["deliveries"] == 1
    assert CAPTCHA_SECRET not in gateway.log


def test_form_answers_come_within_5_seconds_while_amocrm_hangs(gateway: Deployment) -> None:
    endpoint = create_form(gateway, "Landing")
    httpx.post(
        f"{gateway.sandbox.url}/_sandbox/faults",
        json={"mode": "timeout", "duration_s": 60},
        timeout=5,
    ).raise_for_status()
    started = time.monotonic()
    answer = httpx.post(endpoint, data={"name": "Odam", "phone": "+998901234567"}, timeout=10)
    assert time.monotonic() - started < 5
    assert delivery(gateway, accepted(answer))["status"] in ("queued", "sending", "retrying")
