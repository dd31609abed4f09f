"""One account's trouble never slows another's deliveries.

Three accounts, each its own sandbox process and a budget of 3 requests/s. 600 leads for
`default` are queued, then an `amogate worker` process delivers them, and the time until the
last is delivered is measured: once with the other accounts idle and healthy, once while `b`'s
amoCRM answers 429 and `c`'s hangs (both with leads waiting), once while `b` is in a 403
cool-down. `default` takes the same time (±20 %) each time; `b` and `c` get every lead, once,
after they recover.

Run with -s to see the measured numbers.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from tests.support.accounts import (
    add_and_connect,
    create_key,
    default_settings,
    max_per_second,
    sandboxes,
    unsorted_source_uids,
)
from tests.support.processes import gateway_env, running_gateway, running_worker

pytestmark = pytest.mark.slow

ACCOUNTS = ["default", "b", "c"]
BUDGET = 3  # requests/s per account
DEFAULT_LEADS = 600
OTHER_LEADS = 40
TOLERANCE = 0.20
FAULT_S = 45


async def queue_leads(url: str, key: str, count: int, label: str) -> list[str]:
    """Send `count` leads with `key`; every one is accepted and queued (no worker runs)."""
    limits = asyncio.Semaphore(16)

    async def one(http: httpx.AsyncClient, n: int) -> str:
        async with limits:
            answer = await http.post(
                "/api/v1/leads/unsorted",
                json={
                    "lead": {"name": f"{label} {n}"},
                    "contact": {"phone": f"+99890{n:07d}"},
                    "comment": "a note for the manager",
                },
            )
        assert answer.status_code == 202, answer.text
        return str(answer.json()["data"]["delivery_id"])

    async with httpx.AsyncClient(base_url=url, headers={"X-API-KEY": key}, timeout=60) as http:
        return list(await asyncio.gather(*(one(http, n) for n in range(count))))


def delivered(db: Path, ids: list[str]) -> int:
    with closing(sqlite3.connect(db)) as conn:
        marks = ",".join("?" * len(ids))
        row = conn.execute(
            f"SELECT count(*) FROM deliveries WHERE status = 'delivered' AND id IN ({marks})",  # noqa: S608 - placeholders only
            ids,
        ).fetchone()
    return int(row[0])


def wait_delivered(db: Path, ids: list[str], timeout: float) -> float:
    """Seconds until every lead in `ids` is delivered."""
    started = time.monotonic()
    while delivered(db, ids) < len(ids):
        assert time.monotonic() - started < timeout, f"{delivered(db, ids)}/{len(ids)} delivered"
        time.sleep(0.05)
    return time.monotonic() - started


def fault(box_url: str, mode: str, duration_s: float) -> None:
    httpx.post(
        f"{box_url}/_sandbox/faults", json={"mode": mode, "duration_s": duration_s}
    ).raise_for_status()


def test_one_accounts_429_timeout_or_403_leaves_the_others_at_full_speed(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    with sandboxes(ACCOUNTS, rate_limit=7) as boxes:
        settings = {
            **default_settings(boxes["default"], f"sqlite:///{db}"),
            "AMO_RATE_LIMIT": str(BUDGET),
            "LEAD_SYNC_TIMEOUT": "0",
            "DELIVERY_RETRY_BASE_SECONDS": "1",
            "DELIVERY_RETRY_MAX_SECONDS": "3",
            # Each round sends the same phones: with matching on, later rounds would link the
            # first round's contacts (other calls, other timings). Isolation compares like with
            # like; matching's own cost is the delivery_matching row of `make bench`.
            "CONTACT_DEDUP": "off",
        }
        env = gateway_env(tmp_path, **settings)
        add_and_connect(tmp_path, env, boxes, rate_limit=str(BUDGET))
        keys = {name: create_key(tmp_path, env, f"site-{name}", name) for name in ACCOUNTS}
        sent: dict[str, list[str]] = {name: [] for name in ACCOUNTS}
        with running_gateway(tmp_path, "--no-worker", environment=settings) as url:

            def queue(name: str, count: int, label: str) -> list[str]:
                ids = asyncio.run(queue_leads(url, keys[name], count, label))
                sent[name] += ids
                return ids

            # 1. alone: the other accounts are healthy and have nothing to send.
            alone_ids = queue("default", DEFAULT_LEADS, "alone")
            with running_worker(tmp_path, "worker1.log", **settings):
                alone = wait_delivered(db, alone_ids, 120)

            # 2. b answers 429 (with retry_after: the rest of the fault), c hangs; both have
            # leads waiting. The faults outlast default's deliveries, then end by themselves.
            fault(boxes["b"].url, "429", FAULT_S)
            fault(boxes["c"].url, "timeout", FAULT_S)
            troubled = queue("b", OTHER_LEADS, "b") + queue("c", OTHER_LEADS, "c")
            with_faults_ids = queue("default", DEFAULT_LEADS, "faults")
            with running_worker(tmp_path, "worker2.log", **settings):
                with_faults = wait_delivered(db, with_faults_ids, 120)
                waiting = delivered(db, troubled)
                recovered = wait_delivered(db, troubled, FAULT_S + 90)

            # 3. b is blocked (403): its calls stop for a cool-down; default goes on.
            fault(boxes["b"].url, "403", 600)
            blocked_b = queue("b", OTHER_LEADS, "b blocked")
            cooldown_ids = queue("default", DEFAULT_LEADS, "cooldown")
            with running_worker(tmp_path, "worker3.log", **settings):
                with_cooldown = wait_delivered(db, cooldown_ids, 120)
                blocked_delivered = delivered(db, blocked_b)
            sent["b"] = [i for i in sent["b"] if i not in blocked_b]

        httpx.delete(f"{boxes['b'].url}/_sandbox/faults").raise_for_status()  # to read it
        landed = {name: unsorted_source_uids(box) for name, box in boxes.items()}
        stats = {name: httpx.get(f"{box.url}/_sandbox/stats").json() for name, box in boxes.items()}
        # The gateway's calls (the test's own reads of the unsorted list left out).
        log = httpx.get(f"{boxes['default'].url}/_sandbox/requests").json()
        default_rate = max_per_second(
            [
                float(e["time"])
                for e in log
                if str(e["path"]).startswith("/api/v4/")
                and not (e["method"] == "GET" and e["path"] == "/api/v4/leads/unsorted")
            ]
        )

    print(
        f"\nisolation: {DEFAULT_LEADS} leads for default at {BUDGET} req/s: alone {alone:.2f}s, "
        f"with b 429 + c timeout {with_faults:.2f}s, with b 403 {with_cooldown:.2f}s; "
        f"b/c delivered after recovery in {recovered:.2f}s; "
        f"default's amoCRM: {stats['default']['by_endpoint']}, at most {default_rate} in a second"
    )
    assert waiting == 0  # nothing reached b or c while they were down
    assert abs(with_faults - alone) <= TOLERANCE * alone
    assert abs(with_cooldown - alone) <= TOLERANCE * alone
    assert blocked_delivered == 0  # b sat out its cool-down
    for name in ACCOUNTS:
        # Every lead landed in its own account exactly once: none lost, none doubled.
        assert sorted(landed[name]) == sorted(sent[name]), name
    assert default_rate <= BUDGET
