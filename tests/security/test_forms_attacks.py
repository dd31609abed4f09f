"""Public form endpoints attacked the way an outsider would: guessing form ids, oversized and
malformed bodies, posts and preflights from sites that are not the form's — against a real
gateway and sandbox, with the database read directly."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.forms.support import create_form
from tests.security.support import Deployment, deployment
from tests.support.processes import gateway_env, run_amogate

pytestmark = pytest.mark.slow

SITE = "https://site.uz"
OTHER = "https://evil.example"
PHONE = {"name": "Odam", "phone": "+998901234567"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    folder: Path = tmp_path_factory.mktemp("forms-attacks")
    # A verifier address where nothing listens: the captcha service is "down".
    with deployment(
        folder, FORM_RATE_PER_MINUTE="1000", CAPTCHA_VERIFY_URL="http://127.0.0.1:9/siteverify"
    ) as d:
        assert d.connect().status_code == 200
        yield d


@pytest.fixture(scope="module")
def endpoint(gateway: Deployment) -> str:
    return create_form(gateway, "Site form", "--origin", SITE)


def deliveries(d: Deployment) -> int:
    return int(d.rows("SELECT count(*) FROM deliveries")[0][0])


def test_guessed_ids_are_404_alike_and_the_database_holds_no_endpoint(
    gateway: Deployment, endpoint: str
) -> None:
    form_id = endpoint.rsplit("/", 1)[1]
    assert len(form_id) - len("frm_") >= 22  # at least 128 bits of URL-safe base64
    guesses = [
        "frm_" + secrets.token_urlsafe(24),
        form_id[:-1] + ("A" if form_id[-1] != "A" else "B"),  # one character off
        form_id[:20],
        "x" * 5000,
        "..%2F..%2Fetc%2Fpasswd",
        "' OR 1=1 --",
    ]
    bodies = set()
    for guess in guesses:
        answer = httpx.post(f"{gateway.url}/api/v1/forms/{guess}", data=PHONE, timeout=10)
        assert answer.status_code == 404, guess
        if "%2F" not in guess:  # a path with slashes is another (unknown) route
            bodies.add(answer.text)
    assert bodies == {'{"success":false,"error":"Form not found"}'}
    assert deliveries(gateway) == 0
    # The database file and its write-ahead log (recent writes live there until a checkpoint).
    files = [gateway.database, gateway.database.with_name(gateway.database.name + "-wal")]
    raw = b"".join(f.read_bytes() for f in files if f.exists())
    assert b"Site form" in raw  # the form's row is in what was read
    assert form_id.encode() not in raw
    assert form_id[len("frm_") + 8 :].encode() not in raw  # not even past the shown hint


def test_a_removed_forms_endpoint_is_404(gateway: Deployment) -> None:
    doomed = create_form(gateway, "Doomed")
    done = run_amogate(gateway.folder, gateway_env(gateway.folder), "forms", "remove", "Doomed")
    assert done.returncode == 0, done.stderr
    assert httpx.post(doomed, data=PHONE, timeout=10).status_code == 404


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("application/x-www-form-urlencoded", b"name=" + b"x" * 300_000, 413),
        ("application/x-www-form-urlencoded", b"&".join([b"a=1"] * 500), 400),
        ("application/json", b"[" * 40 + b"]" * 40, 400),
        ("application/json", b'{"phone": ' + b"[" * 40 + b"]" * 40 + b"}", 400),
        ("multipart/form-data", b"--nobound\r\n", 400),
        ("application/xml", b"<lead/>", 400),
        ("application/x-www-form-urlencoded", b"\xff\xfe\xfd", 400),
    ],
)
def test_oversized_and_malformed_bodies_are_refused_and_store_nothing(
    gateway: Deployment, endpoint: str, content_type: str, body: bytes, status: int
) -> None:
    before = deliveries(gateway)
    answer = httpx.post(endpoint, content=body, headers={"Content-Type": content_type}, timeout=10)
    assert answer.status_code == status, answer.text
    assert answer.json()["success"] is False
    assert deliveries(gateway) == before


def test_a_body_over_the_gateway_limit_is_cut_off_at_413(
    gateway: Deployment, endpoint: str
) -> None:
    answer = httpx.post(
        endpoint,
        content=b"a=" + b"x" * (2 * 1024 * 1024),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=30,
    )
    assert answer.status_code == 413


def test_preflight_is_allowed_only_for_the_forms_origins(
    gateway: Deployment, endpoint: str
) -> None:
    def preflight(origin: str, url: str = endpoint) -> httpx.Response:
        return httpx.options(
            url,
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
            timeout=10,
        )

    allowed = preflight(SITE)
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == SITE
    assert "POST" in allowed.headers["access-control-allow-methods"]
    for origin in (OTHER, "null", SITE + ".evil.example", "http://site.uz"):
        refused = preflight(origin)
        assert refused.status_code == 403, origin
        assert "access-control-allow-origin" not in refused.headers
    unknown = preflight(SITE, f"{gateway.url}/api/v1/forms/frm_{secrets.token_urlsafe(24)}")
    assert unknown.status_code == 403


def test_posts_from_other_sites_are_403_and_store_nothing(
    gateway: Deployment, endpoint: str
) -> None:
    before = deliveries(gateway)
    for origin in (OTHER, "null"):
        answer = httpx.post(endpoint, data=PHONE, headers={"Origin": origin}, timeout=10)
        assert answer.status_code == 403
        assert "access-control-allow-origin" not in answer.headers
    assert deliveries(gateway) == before
    own = httpx.post(endpoint, data=PHONE, headers={"Origin": SITE}, timeout=10)
    assert own.status_code == 200
    assert own.headers["access-control-allow-origin"] == SITE


def test_a_form_without_origins_refuses_browsers_and_takes_servers(gateway: Deployment) -> None:
    server_only = create_form(gateway, "Tilda webhook")
    browser = httpx.post(server_only, data=PHONE, headers={"Origin": SITE}, timeout=10)
    assert browser.status_code == 403
    server = httpx.post(server_only, data=PHONE, timeout=10)
    assert server.status_code == 200


def test_the_captcha_secret_never_leaves_the_database(gateway: Deployment) -> None:
    secret = "turnstile-secret-" + secrets.token_hex(8)
    url = create_form(gateway, "Captcha", "--captcha", "turnstile", "--captcha-secret", secret)
    listed = run_amogate(gateway.folder, gateway_env(gateway.folder), "forms", "list")
    assert listed.returncode == 0
    assert secret not in listed.stdout
    answer = httpx.post(url, data={**PHONE, "cf-turnstile-response": "x"}, timeout=10)
    assert answer.status_code == 200  # the verifier is down: accepted, marked unverified
    assert secret not in answer.text
    assert secret not in gateway.log
