"""Schemathesis fuzzes every operation of /openapi.json against the gateway connected to the
amoCRM sandbox: no answer is a 5xx, and every error leaves in the envelope.

The rules checked on each answer (see `check_answer`):

* no status >= 500 (the sandbox is healthy, so amoCRM trouble is no excuse);
* 401 is the original gateway's exact body;
* any other error is `{"success": false, "error": <non-empty str>, "details"?: <object>}`;
* a success is `{"success": true, "message": <str>, ...}`;
* 302 and 304 carry no envelope; `/metrics` is Prometheus text.

Cases come from schemathesis' Hypothesis strategies (positive and negative data) and are sent
through httpx to the app in-process, so the test runs on the same event loop as the gateway's
lifespan and the sandbox (schemathesis' own ASGI client would run the app on another loop).
The `/admin` pages are not in the schema; they have their own tests in tests/web.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from schemathesis.schemas import APIOperation

from amogate.api.errors import UNAUTHORIZED_BODY
from amogate.app import create_app
from amogate.settings import Settings
from tests.conftest import TEST_API_KEY, make_settings
from tests.support.gateway import Harness, connected_gateway

pytestmark = pytest.mark.slow

BASE_URL = "http://gateway.test"
# Bounded for CI; AMOGATE_FUZZ_EXAMPLES=500 digs deeper on a developer's machine.
EXAMPLES_PER_OPERATION = int(os.environ.get("AMOGATE_FUZZ_EXAMPLES", "25"))
EXAMPLES_WITHOUT_KEY = max(1, EXAMPLES_PER_OPERATION // 2)

# The schema as the running app serves it; building the app touches no file or network.
SCHEMA = schemathesis.openapi.from_dict(create_app(make_settings(Path("unused"))).openapi())
Operation = APIOperation[Any, Any, Any, Any]
Case = schemathesis.Case[Any]


def _operations() -> dict[str, Operation]:
    found: dict[str, Operation] = {}
    for result in SCHEMA.get_all_operations():
        if not isinstance(result, Ok):
            raise result.err()  # a broken schema fails collection loudly
        found[result.ok().label] = result.ok()
    return found


OPERATIONS = _operations()
# Public form posts need no key (the form id in the path is what admits them).
AUTHENTICATED = sorted(
    label for label in OPERATIONS if " /api/v1/" in label and " /api/v1/forms/" not in label
)
# Negative data needs something to break: a parameter or a body with constraints. Any text
# is a valid delivery id, so there is no invalid request to make there; the same goes for the
# webhook route's account and secret (any other is 404; its bodies: test_webhook_inbound_fuzz).
UNBREAKABLE = {
    "GET /api/v1/leads/deliveries/{delivery_id}",
    "POST /webhooks/amocrm/{account}/{secret}",
}
WITH_INPUTS = sorted(
    label
    for label, op in OPERATIONS.items()
    if (any(op.iter_parameters()) or len(op.body) > 0) and label not in UNBREAKABLE
)
CASES = [(label, GenerationMode.POSITIVE) for label in sorted(OPERATIONS)] + [
    (label, GenerationMode.NEGATIVE) for label in WITH_INPUTS
]

# Headers the gateway reads that the schema does not describe.
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=300)
EXTRA_HEADERS = st.dictionaries(
    st.sampled_from(["Idempotency-Key", "If-None-Match", "X-Request-ID", "Origin"]),
    st.one_of(HEADER_TEXT, st.just("*"), st.just("https://shop.example")),
    max_size=4,
)

FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    database=None,
    # The harness is built once per operation, not per example: that is intended.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)


@pytest.fixture
async def harness(settings: Settings) -> AsyncIterator[Harness]:
    # The delivery worker runs, so accepted leads reach the sandbox within the sync answer; a
    # generous outbound budget keeps the fuzzing fast.
    async with connected_gateway(
        settings, background=True, amo_rate_limit=50, lead_sync_timeout=5
    ) as h:
        yield h


def as_httpx_request(kwargs: dict[str, Any]) -> httpx.Request:
    """Schemathesis serialises a case as `requests` arguments; prepare them exactly as requests
    would (query encoding, JSON or raw body) and replay the result with httpx."""
    accepted = ("method", "url", "headers", "params", "data", "json", "cookies", "files")
    prepared = requests.Request(**{k: v for k, v in kwargs.items() if k in accepted}).prepare()
    body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
    assert body is None or isinstance(body, bytes)
    assert prepared.method is not None
    assert prepared.url is not None
    headers = {
        name: value.decode("latin-1") if isinstance(value, bytes) else value
        for name, value in prepared.headers.items()
    }
    return httpx.Request(prepared.method, prepared.url, headers=headers, content=body)


async def send(
    harness: Harness,
    case: Case,
    headers: dict[str, str],
    extra: dict[str, str] | None = None,
) -> httpx.Response:
    request = as_httpx_request(case.as_transport_kwargs(base_url=BASE_URL, headers=headers))
    # Set on the httpx request: requests refuses values httpx (and real clients) send as given.
    request.headers.update(extra or {})
    return await harness.gateway.send(request)


def describe(case: Case, response: httpx.Response) -> str:
    return (
        f"{case.method} {case.formatted_path} -> {response.status_code}\n"
        f"query={case.query!r} body={getattr(case, 'body', None)!r}\n"
        f"answer: {response.headers.get('content-type')} {response.text[:500]!r}"
    )


def check_answer(case: Case, response: httpx.Response) -> None:
    """The rules every answer of the gateway follows (module docstring)."""
    status = response.status_code
    why = describe(case, response)
    assert status < 500, f"server error\n{why}"
    if status in (302, 304):
        assert response.content == b"" or status == 302, f"304 with a body\n{why}"
        if status == 302:
            assert response.headers.get("location"), f"302 without Location\n{why}"
        return
    if case.path == "/metrics" and status == 200:
        assert response.headers["content-type"].startswith("text/plain"), why
        return
    assert response.headers.get("content-type", "").startswith("application/json"), why
    body = json.loads(response.content)
    assert isinstance(body, dict), why
    if status == 401:
        assert body == UNAUTHORIZED_BODY, f"401 outside the original body\n{why}"
    elif status >= 400:
        assert body.get("success") is False, why
        assert set(body) <= {"success", "error", "details"}, f"extra envelope keys\n{why}"
        assert isinstance(body["error"], str), why
        assert body["error"], f"empty error message\n{why}"
        assert isinstance(body.get("details", {}), dict), why
    else:
        assert body.get("success") is True, why
        assert isinstance(body.get("message"), str), why


@pytest.mark.parametrize(("label", "mode"), CASES)
@FUZZ_SETTINGS
@given(data=st.data())
async def test_no_operation_answers_a_server_error_or_an_error_outside_the_envelope(
    harness: Harness, label: str, mode: GenerationMode, data: st.DataObject
) -> None:
    case = data.draw(OPERATIONS[label].as_strategy(generation_mode=mode), label="case")
    # JSON asks /oauth/callback for the envelope instead of its HTML page for browsers.
    headers = {"X-API-KEY": TEST_API_KEY, "Accept": "application/json"}
    extra = data.draw(EXTRA_HEADERS, label="extra headers")
    response = await send(harness, case, headers, extra)
    event(f"status {response.status_code}")
    check_answer(case, response)


@pytest.mark.parametrize("label", AUTHENTICATED)
@settings(FUZZ_SETTINGS, max_examples=EXAMPLES_WITHOUT_KEY)
@given(data=st.data())
async def test_calls_without_a_valid_key_get_the_original_401_body(
    harness: Harness, label: str, data: st.DataObject
) -> None:
    case = data.draw(OPERATIONS[label].as_strategy(), label="case")
    key = data.draw(
        st.one_of(st.none(), st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E))),
        label="key",
    )
    headers = {"Accept": "application/json"}
    if key is not None:
        headers["X-API-KEY"] = key
    response = await send(harness, case, headers)
    check_answer(case, response)
    assert response.status_code == 401, describe(case, response)
