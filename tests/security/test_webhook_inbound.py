"""The inbound webhook route attacked from outside, against a real gateway process: wrong,
partial, empty or misplaced secrets; another account's URL; oversized and field-bomb bodies;
replays of a captured post. None of it stores anything (a replay stores nothing new), the
answers leak nothing, and the secret never reaches the log."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.security.support import Deployment, deployment, gateway_settings
from tests.support.processes import gateway_env, run_amogate

pytestmark = pytest.mark.slow

BODY = (
    b"leads%5Bstatus%5D%5B0%5D%5Bid%5D=15318175&leads%5Bstatus%5D%5B0%5D%5Bstatus_id%5D=142"
    b"&leads%5Bstatus%5D%5B0%5D%5Bold_status_id%5D=67548607&account%5Bsubdomain%5D=test"
)
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
NOT_FOUND = {
    "success": False,
    "error": "Endpoint not found: /webhooks/amocrm/{account}/{secret}",
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, str]]:
    folder = tmp_path_factory.mktemp("webhook-attacks")
    with deployment(folder) as d:
        env = gateway_env(folder, **gateway_settings(d.sandbox.url))
        shop = run_amogate(folder, env, "accounts", "add", "shop", "--domain", "shop.amocrm.ru")
        assert shop.returncode == 0, shop.stderr
        for account in ("default", "shop"):
            added = run_amogate(
                folder,
                env,
                "webhooks",
                "add",
                "http://127.0.0.1:9/hook",
                "--account",
                account,
                "--events",
                "status_lead",
            )
            assert added.returncode == 0, added.stderr
        (secret,) = d.rows("SELECT inbound_secret FROM relay_accounts WHERE account_key='default'")
        yield d, secret[0]


def stored(d: Deployment) -> tuple[int, int, int]:
    counts = d.table_counts()
    return counts["relay_posts"], counts["relay_events"], counts["relay_deliveries"]


def post(d: Deployment, path: str, body: bytes = BODY, **kwargs: object) -> httpx.Response:
    return httpx.post(f"{d.url}{path}", content=body, headers=FORM, timeout=30, **kwargs)  # type: ignore[arg-type]


def test_wrong_partial_empty_or_misplaced_secrets_are_404_and_store_nothing(
    gateway: tuple[Deployment, str],
) -> None:
    d, secret = gateway
    (other,) = d.rows("SELECT inbound_secret FROM relay_accounts WHERE account_key='shop'")
    before = stored(d)
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    for path in [
        f"/webhooks/amocrm/default/{flipped}",
        f"/webhooks/amocrm/default/{secret[:-1]}",
        f"/webhooks/amocrm/default/{secret}x",
        f"/webhooks/amocrm/default/{secret.upper()}",
        f"/webhooks/amocrm/default/{other[0]}",  # another account's secret
        f"/webhooks/amocrm/shop/{secret}",  # this secret on another account
        f"/webhooks/amocrm/nobody/{secret}",
        f"/webhooks/amocrm/default/%20{secret}",
    ]:
        answer = post(d, path)
        assert answer.status_code == 404, path
        assert answer.json() == NOT_FOUND  # the path (and so any secret) is never echoed
    # Not the route at all (one more segment): the ordinary 404 for an unknown path.
    answer = post(d, f"/webhooks/amocrm/default/..%2F{secret}")
    assert answer.status_code == 404
    assert answer.json()["error"].startswith("Endpoint not found: ")
    for path in ["/webhooks/amocrm/default/", f"/webhooks/amocrm/default?secret={secret}"]:
        answer = post(d, path)
        assert answer.status_code in (404, 405), path
        assert secret not in answer.text
    assert stored(d) == before


def test_oversized_and_field_bomb_bodies_are_refused_quickly_and_store_nothing(
    gateway: tuple[Deployment, str],
) -> None:
    d, secret = gateway
    path = f"/webhooks/amocrm/default/{secret}"
    before = stored(d)
    big = post(d, path, b"leads[add][0][name]=" + b"x" * (2 * 1024 * 1024))
    assert big.status_code == 413
    assert big.json()["error"] == "Request body too large"

    def trickle() -> Iterator[bytes]:
        yield b"leads[add][0][name]="
        for _ in range(40):
            yield b"y" * 65536

    streamed = httpx.post(f"{d.url}{path}", content=trickle(), headers=FORM, timeout=30)
    assert streamed.status_code == 413
    bomb = b"&".join(b"leads[add][0][f%d]=1" % i for i in range(25_000))
    started = time.perf_counter()
    refused = post(d, path, bomb)
    assert time.perf_counter() - started < 2
    assert refused.status_code == 400
    assert refused.json()["error"] == "Invalid webhook body"
    deep = b"leads[add][0]" + b"[a]" * 40 + b"=1"
    assert post(d, path, deep).status_code == 400
    assert stored(d) == before


def test_a_replayed_post_is_stored_once_and_the_secret_never_reaches_the_log(
    gateway: tuple[Deployment, str],
) -> None:
    d, secret = gateway
    path = f"/webhooks/amocrm/default/{secret}"
    before = stored(d)
    first = post(d, path)
    replays = [post(d, path) for _ in range(5)]
    assert first.status_code == 200
    assert first.json()["data"] == {"events": 1, "duplicate": False}
    assert {r.json()["data"]["duplicate"] for r in replays} == {True}
    assert stored(d) == (before[0] + 1, before[1] + 1, before[2] + 1)
    # The same captured body sent to another account's URL without its secret: nothing.
    assert post(d, "/webhooks/amocrm/shop/guess").status_code == 404
    for answer in [first, *replays]:
        assert secret not in answer.text
    time.sleep(0.5)
    log = d.log
    assert "webhook.inbound.stored" in log
    assert secret not in log
    assert (
        secret not in Path(d.error_log).read_text(encoding="utf-8")
        if Path(d.error_log).exists()
        else True
    )
