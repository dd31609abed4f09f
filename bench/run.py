"""amogate benchmarks: real processes, `wrk` as the load generator, medians of 3 runs.

    python -m bench.run [--runs 3] [--duration 10] [--processes N] [--render JSON]
                        [--only health,reads,intake,sync,delivery,delivery_matching,
                                accounts_delivery,processes_2,postgres,startup]
                        (and shared_budget, run only when named)

Starts the amoCRM sandbox (at amoCRM's default budget of 7 requests/s) and the gateway as real
processes, connects them through the real OAuth flow, measures, prints a table and writes
`bench/results/latest.json`. Every figure is the median of the runs, with min and max.

Absolute figures move with the machine's load, so the HTTP scenarios also measure a floor in
the same run, just before themselves: a bare ASGI app (bench/floor.py) answering `/health`'s
exact bytes on the same server with the same wrk settings. `ratio_to_floor` is the scenario's
throughput divided by that floor's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from amogate.amocrm.sandbox.config import SandboxConfig
from amogate.amocrm.sandbox.runner import SandboxServer, free_port
from amogate.amocrm.sandbox.tokens import make_long_lived_token
from amogate.connection.limiter import JITTER_S

HERE = Path(__file__).resolve().parent
KEY = "bench-admin-key-0123456789"
RATE_LIMIT = 7
BATCH = 50  # leads per unsorted/forms request and notes per notes request (the worker's max)
BACKLOG = 2000
# HTTP processes of `amogate serve` (its default, 1); set by --processes.
PROCESSES = {"n": 1}

LEAD_BODY: dict[str, Any] = {
    "source": "bench",
    "form_name": "Bench form",
    "lead": {"name": "Backlog lead", "price": 1000, "tags": ["bench"]},
    "contact": {"name": "Mijoz", "phone": "+998901234567"},
    "utm": {"utm_source": "bench"},
    "comment": "Benchmark lead",
}


# --- processes ---------------------------------------------------------------------------


def gateway_env(folder: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AMO_", "API_KEY", "LEAD_", "DATABASE_URL"))
    }
    env.update(
        API_KEY=KEY,
        DATABASE_URL=f"sqlite:///{folder / 'amogate.db'}",
        TOKEN_STORAGE_PATH=str(folder / "tokens.json"),
        ERROR_LOG_PATH=str(folder / "error.log"),
        LOG_FORMAT="json",
        LOG_LEVEL="WARNING",
        LOG_ERRORS="false",
        AMO_CLIENT_ID="sandbox-client-id",
        AMO_CLIENT_SECRET="sandbox-client-secret",
        AMO_REDIRECT_URI="http://localhost:9095/oauth/callback",
    )
    env.update(extra)
    return env


@dataclass
class Process:
    popen: subprocess.Popen[bytes]
    url: str = ""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def start_amogate(folder: Path, *args: str, env: dict[str, str], log: str) -> Process:
    out = (folder / log).open("ab")
    popen = subprocess.Popen(
        [sys.executable, "-m", "amogate", *args],
        env=env,
        cwd=folder,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    out.close()
    return Process(popen)


def wait_healthy(url: str, process: Process, timeout: float = 30.0) -> float:
    """Seconds until GET /health answers 200."""
    started = time.perf_counter()
    with httpx.Client(timeout=1.0) as client:
        while True:
            try:
                if client.get(f"{url}/health").status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            if process.popen.poll() is not None:
                raise RuntimeError(f"gateway exited with {process.popen.returncode}")
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"{url} not healthy after {timeout} s")
            time.sleep(0.01)


@contextmanager
def gateway(
    folder: Path, sandbox: SandboxServer, *args: str, processes: int = 0, **env: str
) -> Iterator[Process]:
    """`amogate serve` (`processes`: 0 for --processes as given on the command line)."""
    port = free_port()
    process = start_amogate(
        folder,
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--processes",
        str(processes or PROCESSES["n"]),
        *args,
        env=gateway_env(folder, AMO_BASE_URL=sandbox.url, **env),
        log="gateway.log",
    )
    process.url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(process.url, process)
        yield process
    finally:
        process.stop()


def connect(gateway_url: str, sandbox_url: str, account: str = "default") -> None:
    """The admin's OAuth flow (admin key; the client keeps the state cookie), with the consent
    given through the sandbox's control API."""
    with httpx.Client(timeout=15) as client:
        start = client.get(
            f"{gateway_url}/oauth/authorize",
            params={"account": account},
            headers={"X-API-KEY": KEY},
        )
        consent = start.headers["location"]
        state = parse_qs(urlsplit(consent).query)["state"][0]
        code = client.post(
            f"{sandbox_url}/_sandbox/authorize",
            json={"client_id": "sandbox-client-id", "state": state},
        ).json()["code"]
        answer = client.get(
            f"{gateway_url}/oauth/callback",
            params={"code": code, "state": state, "referer": urlsplit(sandbox_url).netloc},
            headers={"Accept": "application/json"},
        )
        answer.raise_for_status()


@contextmanager
def floor_server() -> Iterator[Process]:
    """The bare ASGI app of bench/floor.py on the same server software and options."""
    port = free_port()
    out = subprocess.DEVNULL
    popen = subprocess.Popen(
        [sys.executable, "-m", "bench.floor", "--port", str(port)],
        cwd=HERE.parent,
        stdout=out,
        stderr=out,
    )
    process = Process(popen, url=f"http://127.0.0.1:{port}")
    try:
        wait_healthy(process.url, process)
        yield process
    finally:
        process.stop()


def floor_rps(duration: int) -> float:
    """What the machine allows right now: the floor's /health throughput under the same wrk
    settings, measured in the same run just before the scenario."""
    with floor_server() as floor:
        return float(wrk(f"{floor.url}/health", "get.lua", duration=duration)["rps"])


# --- measuring ---------------------------------------------------------------------------


def wrk(url: str, script: str, *, duration: int, connections: int = 32) -> dict[str, Any]:
    env = {**os.environ, "AMOGATE_KEY": KEY}
    result = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "5s",
            "-s",
            str(HERE / script),
            url,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    line = next(x for x in result.stdout.splitlines() if x.startswith("BENCH_JSON "))
    data: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
    data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
    return data


class RssSampler(threading.Thread):
    """Peak resident memory of a process and its children, sampled every 50 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kb = 0
        self._done = threading.Event()

    def _tree(self) -> list[int]:
        pids, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*/children"):
                with contextlib.suppress(OSError):
                    todo += [int(x) for x in task.read_text().split()]
        return pids

    def run(self) -> None:
        while not self._done.is_set():
            total = 0
            for pid in self._tree():
                try:
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1])
                except OSError:
                    pass
            self.peak_kb = max(self.peak_kb, total)
            self._done.wait(0.05)

    def stop(self) -> float:
        self._done.set()
        self.join()
        return self.peak_kb / 1024


def delivery_counts(folder: Path) -> dict[str, int]:
    with sqlite3.connect(folder / "amogate.db", timeout=30) as db:
        rows = db.execute("SELECT status, count(*) FROM deliveries GROUP BY status").fetchall()
    return {str(status): int(count) for status, count in rows}


async def post_backlog(
    url: str, count: int, concurrency: int = 32, key: str = KEY, *, distinct: bool = False
) -> None:
    """`count` leads; `distinct`: each from another person (own phone and email)."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def client_loop(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            body = {**LEAD_BODY, "lead": {**LEAD_BODY["lead"], "name": f"Backlog lead {i}"}}
            if distinct:
                person = {"phone": f"+99893{i:07d}", "email": f"client{i}@example.uz"}
                body["contact"] = {**LEAD_BODY["contact"], **person}
            response = await client.post(
                f"{url}/api/v1/leads/unsorted", json=body, headers={"X-API-KEY": key}
            )
            if response.status_code not in (200, 202):
                raise RuntimeError(f"lead {i} answered {response.status_code}: {response.text}")

    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))


# --- scenarios ---------------------------------------------------------------------------

Result = dict[str, float]


def intake_figures(data: dict[str, Any], floor: float) -> Result:
    return {
        "leads_per_s": data["rps"],
        "floor_rps": floor,
        "ratio_to_floor": data["rps"] / floor,
        "p50_ms": data["p50_us"] / 1000,
        "p99_ms": data["p99_us"] / 1000,
        "non_2xx": data["non2xx"] + data["socket_errors"],
    }


def read_figures(data: dict[str, Any], floor: float) -> Result:
    return {
        "rps": data["rps"],
        "floor_rps": floor,
        "ratio_to_floor": data["rps"] / floor,
        "p50_ms": data["p50_us"] / 1000,
        "p99_ms": data["p99_us"] / 1000,
        "non_2xx": data["non2xx"] + data["socket_errors"],
    }


def scenario_intake(folder: Path, duration: int) -> Result:
    floor = floor_rps(duration)
    with (
        SandboxServer(rate_limit=RATE_LIMIT) as sandbox,
        gateway(folder, sandbox, LEAD_SYNC_TIMEOUT="0") as gw,
    ):
        connect(gw.url, sandbox.url)
        sampler = RssSampler(gw.pid)
        sampler.start()
        data = wrk(f"{gw.url}/api/v1/leads/unsorted", "lead.lua", duration=duration)
        peak = sampler.stop()
        stored = sum(delivery_counts(folder).values())
    return {
        **intake_figures(data, floor),
        "accepted_but_not_stored": max(0, data["requests"] - data["non2xx"] - stored),
        "peak_rss_mb": peak,
    }


def scenario_sync(folder: Path, duration: int) -> Result:
    """The default mode (LEAD_SYNC_TIMEOUT unset): each of 32 clients waits for its lead to
    exist in amoCRM (the sandbox at amoCRM's 7 requests/s) before sending the next."""
    with SandboxServer(rate_limit=RATE_LIMIT) as sandbox, gateway(folder, sandbox) as gw:
        connect(gw.url, sandbox.url)
        data = wrk(f"{gw.url}/api/v1/leads/unsorted", "lead.lua", duration=duration)
        stats = httpx.get(f"{sandbox.url}/_sandbox/stats").json()
        # The notes follow the answers: wait for the last ones before counting them.
        deadline = time.monotonic() + 30
        while delivery_counts(folder).get("delivered", 0) < data["requests"]:
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        counts = delivery_counts(folder)
    return {
        "leads_per_s": data["rps"],
        "p50_ms": data["p50_us"] / 1000,
        "p99_ms": data["p99_us"] / 1000,
        "non_2xx": data["non2xx"] + data["socket_errors"],
        "delivered_with_note": counts.get("delivered", 0),
        "answered": data["requests"],
        "upstream_429": stats["rate_limited"],
    }


def scenario_delivery(folder: Path, duration: int, *, matching: bool = False) -> Result:
    """The backlog drained by one worker. Without `matching` (CONTACT_DEDUP=off) every lead
    makes its contact as before contact matching existed; with it, every lead comes from
    another person, so each one is looked up and none is found (the costliest case)."""
    del duration
    dedup = "phone,email" if matching else "off"
    with SandboxServer(rate_limit=RATE_LIMIT) as sandbox:
        with gateway(
            folder, sandbox, "--no-worker", LEAD_SYNC_TIMEOUT="0", CONTACT_DEDUP=dedup
        ) as gw:
            connect(gw.url, sandbox.url)
            asyncio.run(post_backlog(gw.url, BACKLOG, distinct=matching))
        before = httpx.get(f"{sandbox.url}/_sandbox/stats").json()
        worker = start_amogate(
            folder,
            "worker",
            env=gateway_env(folder, AMO_BASE_URL=sandbox.url, CONTACT_DEDUP=dedup),
            log="worker.log",
        )
        started = time.perf_counter()
        first_call: float | None = None
        try:
            with httpx.Client(base_url=sandbox.url) as control:
                # The drain starts with the worker's first call to amoCRM (process start-up and
                # imports are measured by the start-up scenario).
                while first_call is None:
                    total = control.get("/_sandbox/stats").json()["requests_total"]
                    if total > before["requests_total"]:
                        first_call = time.perf_counter()
                    elif worker.popen.poll() is not None:
                        raise RuntimeError("worker exited")
                    else:
                        time.sleep(0.01)
            while delivery_counts(folder).get("delivered", 0) < BACKLOG:
                if worker.popen.poll() is not None:
                    raise RuntimeError("worker exited")
                if time.perf_counter() - started > 600:
                    raise TimeoutError(f"backlog not drained: {delivery_counts(folder)}")
                time.sleep(0.05)
            finished = time.perf_counter()
            elapsed = finished - first_call
            wall = finished - started
        finally:
            worker.stop()
        after = httpx.get(f"{sandbox.url}/_sandbox/stats").json()

    def calls(name: str) -> int:
        key = f"POST {name}"
        return int(after["by_endpoint"].get(key, 0)) - int(before["by_endpoint"].get(key, 0))

    forms = calls("/api/v4/leads/unsorted/forms")
    notes = calls("/api/v4/leads/notes")
    contact_reads = int(after["by_endpoint"].get("GET /api/v4/contacts", 0)) - int(
        before["by_endpoint"].get("GET /api/v4/contacts", 0)
    )
    per_lead = 1 / BATCH + 1 / BATCH  # one forms item and one note per lead, 50 per request
    theoretical = RATE_LIMIT / per_lead
    # amogate spends slightly less than the budget on purpose (see connection/limiter.py).
    own_budget = RATE_LIMIT / (1 + JITTER_S) / per_lead
    leads_per_s = BACKLOG / elapsed
    return {
        "drain_s": elapsed,
        "drain_with_startup_s": wall,
        "leads_per_s": leads_per_s,
        "theoretical_leads_per_s": theoretical,
        "ratio_to_max": leads_per_s / theoretical,
        "ratio_to_spacing_max": leads_per_s / own_budget,
        "forms_requests": forms,
        "notes_requests": notes,
        "contact_reads": contact_reads,
        "upstream_429": int(after["rate_limited"]) - int(before["rate_limited"]),
        "max_upstream_rps": after["max_requests_per_second_any"],
    }


ACCOUNTS = ("default", "b", "c")


def amogate_command(folder: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "amogate", *args],
        env=env,
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"amogate {' '.join(args[:2])} failed: {done.stderr}")
    return done.stdout


def scenario_accounts_delivery(folder: Path, duration: int) -> Result:
    """3 accounts x BACKLOG leads, each account its own sandbox at RATE_LIMIT requests/s: one
    `amogate worker` drains all three at once."""
    del duration
    with contextlib.ExitStack() as stack:
        boxes = {
            name: stack.enter_context(
                SandboxServer(rate_limit=RATE_LIMIT, subdomain=f"bench-{name}", account_id=n + 1)
            )
            for n, name in enumerate(ACCOUNTS)
        }
        # Every lead has one phone: matching off, as in the delivery row without it.
        env = gateway_env(folder, AMO_BASE_URL=boxes["default"].url, CONTACT_DEDUP="off")
        for name in ACCOUNTS[1:]:
            amogate_command(
                folder,
                env,
                "accounts",
                "add",
                name,
                "--domain",
                f"{name}.amocrm.ru",
                "--base-url",
                boxes[name].url,
            )
        keys = {
            name: amogate_command(
                folder, env, "keys", "create", f"bench-{name}", "--account", name
            ).splitlines()[-1]
            for name in ACCOUNTS
        }
        with gateway(
            folder, boxes["default"], "--no-worker", LEAD_SYNC_TIMEOUT="0", CONTACT_DEDUP="off"
        ) as gw:
            for name in ACCOUNTS:
                connect(gw.url, boxes[name].url, name)

            async def backlog() -> None:
                await asyncio.gather(
                    *(post_backlog(gw.url, BACKLOG, 16, keys[name]) for name in ACCOUNTS)
                )

            asyncio.run(backlog())
        before = {n: httpx.get(f"{b.url}/_sandbox/stats").json() for n, b in boxes.items()}
        worker = start_amogate(folder, "worker", env=env, log="worker.log")
        started = time.perf_counter()
        first_call: float | None = None
        total = BACKLOG * len(ACCOUNTS)
        try:
            while first_call is None:
                for name, box in boxes.items():
                    now = httpx.get(f"{box.url}/_sandbox/stats").json()["requests_total"]
                    if now > before[name]["requests_total"]:
                        first_call = time.perf_counter()
                if worker.popen.poll() is not None:
                    raise RuntimeError("worker exited")
                time.sleep(0.01)
            while delivery_counts(folder).get("delivered", 0) < total:
                if worker.popen.poll() is not None:
                    raise RuntimeError("worker exited")
                if time.perf_counter() - started > 600:
                    raise TimeoutError(f"backlog not drained: {delivery_counts(folder)}")
                time.sleep(0.05)
            elapsed = time.perf_counter() - first_call
        finally:
            worker.stop()
        after = {n: httpx.get(f"{b.url}/_sandbox/stats").json() for n, b in boxes.items()}
    per_lead = 1 / BATCH + 1 / BATCH
    single_bound = RATE_LIMIT / per_lead
    leads_per_s = total / elapsed
    return {
        "drain_s": elapsed,
        "leads_per_s": leads_per_s,
        "bound_3x_single_leads_per_s": len(ACCOUNTS) * single_bound,
        "ratio_to_3x_single_bound": leads_per_s / (len(ACCOUNTS) * single_bound),
        # Against what amogate's own spacing allows (see the delivery scenario).
        "ratio_to_3x_spacing_max": leads_per_s
        / (len(ACCOUNTS) * RATE_LIMIT / (1 + JITTER_S) / per_lead),
        "upstream_429": sum(
            int(after[n]["rate_limited"]) - int(before[n]["rate_limited"]) for n in ACCOUNTS
        ),
        "max_upstream_rps": max(a["max_requests_per_second_any"] for a in after.values()),
    }


def scenario_reads(folder: Path, duration: int) -> Result:
    floor = floor_rps(duration)
    with SandboxServer(rate_limit=RATE_LIMIT) as sandbox, gateway(folder, sandbox) as gw:
        connect(gw.url, sandbox.url)
        warm = httpx.get(f"{gw.url}/api/v1/info/pipelines", headers={"X-API-KEY": KEY})
        warm.raise_for_status()
        data = wrk(f"{gw.url}/api/v1/info/pipelines", "get.lua", duration=duration)
        upstream = httpx.get(f"{sandbox.url}/_sandbox/stats").json()["by_endpoint"]
    return {
        **read_figures(data, floor),
        "upstream_pipeline_calls": upstream.get("GET /api/v4/leads/pipelines", 0),
    }


def scenario_health(folder: Path, duration: int) -> Result:
    floor = floor_rps(duration)
    with SandboxServer(rate_limit=RATE_LIMIT) as sandbox, gateway(folder, sandbox) as gw:
        data = wrk(f"{gw.url}/health", "get.lua", duration=duration)
    return read_figures(data, floor)


def scenario_processes_2(folder: Path, duration: int) -> Result:
    """`amogate serve --processes 2` on SQLite: cached reads, then the intake."""
    floor = floor_rps(duration)
    with (
        SandboxServer(rate_limit=RATE_LIMIT) as sandbox,
        gateway(folder, sandbox, processes=2, LEAD_SYNC_TIMEOUT="0") as gw,
    ):
        connect(gw.url, sandbox.url)
        for _ in range(4):  # each process fills its own cache
            warm = httpx.get(f"{gw.url}/api/v1/info/pipelines", headers={"X-API-KEY": KEY})
            warm.raise_for_status()
        reads = wrk(f"{gw.url}/api/v1/info/pipelines", "get.lua", duration=duration)
        intake = wrk(f"{gw.url}/api/v1/leads/unsorted", "lead.lua", duration=duration)
    return {
        "reads_rps": reads["rps"],
        "reads_ratio_to_floor": reads["rps"] / floor,
        "floor_rps": floor,
        **{f"intake_{k}": v for k, v in intake_figures(intake, floor).items() if k != "floor_rps"},
    }


POSTGRES_ADMIN_URL = os.environ.get(
    "AMOGATE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one run; its URL. Dropped afterwards."""
    import asyncpg

    name = f"amogate_bench_{os.getpid()}_{int(time.time() * 1000)}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def scenario_postgres(folder: Path, duration: int) -> Result:
    """Two `amogate serve` processes on PostgreSQL (each with its worker): the intake."""
    floor = floor_rps(duration)
    with postgres_database() as url, SandboxServer(rate_limit=RATE_LIMIT) as sandbox:
        env = gateway_env(folder, AMO_BASE_URL=sandbox.url, DATABASE_URL=url)
        upgrade = subprocess.run(
            [sys.executable, "-m", "amogate", "db", "upgrade"],
            env=env,
            cwd=folder,
            capture_output=True,
            check=False,
        )
        if upgrade.returncode != 0:
            raise RuntimeError(f"amogate db upgrade failed: {upgrade.stderr.decode()[-2000:]}")
        with gateway(folder, sandbox, processes=2, DATABASE_URL=url, LEAD_SYNC_TIMEOUT="0") as gw:
            connect(gw.url, sandbox.url)
            data = wrk(f"{gw.url}/api/v1/leads/unsorted", "lead.lua", duration=duration)
    return intake_figures(data, floor)


def scenario_startup(folder: Path, duration: int) -> Result:
    """`amogate serve` on a fresh SQLite database (migrations included) to a healthy /health."""
    del duration
    with SandboxServer(rate_limit=RATE_LIMIT) as sandbox:
        port = free_port()
        process = start_amogate(
            folder,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            env=gateway_env(folder, AMO_BASE_URL=sandbox.url),
            log="startup.log",
        )
        try:
            seconds = wait_healthy(f"http://127.0.0.1:{port}", process)
        finally:
            process.stop()
    return {"seconds": seconds}


SHARED_BUDGET_GATEWAYS = 3


async def fresh_reads(urls: list[str], seconds: float) -> dict[str, int]:
    """Clients asking every gateway for data fetched from amoCRM on each request."""
    outcomes = {"ok": 0, "failed": 0}
    deadline = time.monotonic() + seconds
    paths = ["/api/v1/info/account", "/api/v1/info/pipelines", "/api/v1/info/lead-fields"]

    async def client(base: str, path: str) -> None:
        async with httpx.AsyncClient(base_url=base, headers={"X-API-KEY": KEY}, timeout=30) as c:
            while time.monotonic() < deadline:
                response = await c.get(path, params={"refresh": "true"})
                fresh = response.status_code == 200 and response.headers.get("X-Cache") == "MISS"
                outcomes["ok" if fresh else "failed"] += 1

    await asyncio.gather(*(client(u, p) for u in urls for p in paths for _ in range(2)))
    return outcomes


def scenario_shared_budget(folder: Path, duration: int) -> Result:
    """Three `amogate serve` processes on one database under reads that each reach amoCRM: how
    much of amoCRM's budget they use together (they must never exceed it)."""
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    token = make_long_lived_token(SandboxConfig(public_url=public_url), time.time())
    with (
        SandboxServer(
            port=port, public_url=public_url, long_lived_token=token, rate_limit=RATE_LIMIT
        ) as sandbox,
        contextlib.ExitStack() as stack,
    ):
        urls = [
            stack.enter_context(
                gateway(folder, sandbox, "--no-worker", AMO_LONG_LIVED_TOKEN=token)
            ).url
            for _ in range(SHARED_BUDGET_GATEWAYS)
        ]
        started = time.monotonic()
        outcomes = asyncio.run(fresh_reads(urls, duration))
        elapsed = time.monotonic() - started
        stats = httpx.get(f"{sandbox.url}/_sandbox/stats").json()
    calls = sum(n for e, n in stats["by_endpoint"].items() if "/api/v4/" in e)
    return {
        "amocrm_calls_per_s": calls / elapsed,
        "ratio_to_budget": calls / elapsed / RATE_LIMIT,
        "max_upstream_rps": stats["max_requests_per_second_any"],
        "upstream_429": stats["rate_limited"],
        "failed_requests": outcomes["failed"],
    }


SCENARIOS: dict[str, Callable[[Path, int], Result]] = {
    "health": scenario_health,
    "reads": scenario_reads,
    "intake": scenario_intake,
    "sync": scenario_sync,
    "delivery": scenario_delivery,
    "delivery_matching": lambda folder, duration: scenario_delivery(
        folder, duration, matching=True
    ),
    "accounts_delivery": scenario_accounts_delivery,
    "processes_2": scenario_processes_2,
    "postgres": scenario_postgres,
    "startup": scenario_startup,
    "shared_budget": scenario_shared_budget,
}
# Run by default (shared_budget on request: it measures the shared budget, not speed).
DEFAULT_SCENARIOS = [name for name in SCENARIOS if name != "shared_budget"]

TARGETS = {
    ("health", "ratio_to_floor"): (">=", 0.50),
    ("reads", "ratio_to_floor"): (">=", 0.25),
    ("reads", "non_2xx"): ("<=", 0),
    ("intake", "leads_per_s"): (">=", 2000),
    ("intake", "ratio_to_floor"): (">=", 0.06),
    ("intake", "p99_ms"): ("<=", 50),
    ("intake", "non_2xx"): ("<=", 0),
    ("intake", "accepted_but_not_stored"): ("<=", 0),
    ("intake", "peak_rss_mb"): ("<=", 120),
    ("sync", "p50_ms"): ("<=", 350),
    ("sync", "non_2xx"): ("<=", 0),
    ("sync", "upstream_429"): ("<=", 0),
    ("delivery", "ratio_to_spacing_max"): (">=", 0.97),
    ("delivery", "upstream_429"): ("<=", 0),
    ("accounts_delivery", "ratio_to_3x_spacing_max"): (">=", 0.95),
    ("delivery_matching", "drain_ratio_to_delivery"): ("<=", 2),
    ("delivery_matching", "upstream_429"): ("<=", 0),
    ("accounts_delivery", "upstream_429"): ("<=", 0),
    ("startup", "seconds"): ("<=", 1.5),
    ("shared_budget", "ratio_to_budget"): (">=", 0.7),
    ("shared_budget", "max_upstream_rps"): ("<=", RATE_LIMIT),
    ("shared_budget", "upstream_429"): ("<=", 0),
    ("shared_budget", "failed_requests"): ("<=", 0),
}


@dataclass
class Summary:
    runs: dict[str, list[Result]] = field(default_factory=dict)

    def stats(self) -> dict[str, dict[str, dict[str, float]]]:
        out: dict[str, dict[str, dict[str, float]]] = {}
        for name, results in self.runs.items():
            out[name] = {}
            for metric in results[0]:
                values = [r[metric] for r in results]
                out[name][metric] = {
                    "median": statistics.median(values),
                    "min": min(values),
                    "max": max(values),
                }
        return out


def with_ratio(stats: dict[str, dict[str, dict[str, float]]]) -> None:
    """Matching's cost: the drain with matching on over the drain without (medians)."""
    plain, matched = stats.get("delivery"), stats.get("delivery_matching")
    if plain is None or matched is None:
        return
    ratio = matched["drain_s"]["median"] / plain["drain_s"]["median"]
    matched["drain_ratio_to_delivery"] = {"median": ratio, "min": ratio, "max": ratio}


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "date": time.strftime("%Y-%m-%d"),
    }


def render(stats: dict[str, dict[str, dict[str, float]]]) -> str:
    """The table: each figure's median, min and max, the floor measured in the same runs
    (median) next to the scenario's figures, and the target."""
    lines = [
        "| scenario | metric | median | min | max | floor (req/s) | target |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, metrics in stats.items():
        floor = metrics.get("floor_rps", {}).get("median")
        for metric, s in metrics.items():
            if metric == "floor_rps":
                continue
            target = TARGETS.get((name, metric))
            mark = ""
            if target:
                op, bound = target
                ok = s["median"] >= bound if op == ">=" else s["median"] <= bound
                mark = f"{op} {bound:g} {'ok' if ok else 'MISSED'}"
            shown_floor = f"{floor:.0f}" if floor is not None else ""
            cells = f"{s['median']:.4g} | {s['min']:.4g} | {s['max']:.4g} | {shown_floor}"
            lines.append(f"| {name} | {metric} | {cells} | {mark} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--only", default=",".join(DEFAULT_SCENARIOS))
    parser.add_argument("--out", type=Path, default=HERE / "results" / "latest.json")
    parser.add_argument(
        "--processes", type=int, default=1, help="amogate serve --processes (default: 1)"
    )
    parser.add_argument(
        "--render", type=Path, metavar="JSON", help="print the table of an earlier run and stop"
    )
    args = parser.parse_args()
    if args.render is not None:
        saved = json.loads(args.render.read_text())
        print(render(saved["stats"]))
        print(f"\nmachine: {saved['machine']}")
        return
    PROCESSES["n"] = args.processes
    if shutil.which("wrk") is None:
        sys.exit("bench: wrk is not installed (apt-get install wrk)")
    summary = Summary()
    for name in [n.strip() for n in args.only.split(",") if n.strip()]:
        summary.runs[name] = []
        for run in range(args.runs):
            with tempfile.TemporaryDirectory(prefix=f"amogate-bench-{name}-") as tmp:
                result = SCENARIOS[name](Path(tmp), args.duration)
            summary.runs[name].append(result)
            shown = ", ".join(f"{k}={v:.4g}" for k, v in result.items())
            print(f"{name} run {run + 1}/{args.runs}: {shown}", flush=True)
            time.sleep(2)
    stats = summary.stats()
    with_ratio(stats)
    print()
    print(render(stats))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    setup = {"serve_processes": args.processes, "sandbox_rate_limit": RATE_LIMIT}
    args.out.write_text(
        json.dumps(
            {"machine": machine(), "setup": setup, "runs": summary.runs, "stats": stats}, indent=2
        )
    )
    print(f"\nmachine: {machine()}\nwritten: {args.out}")


if __name__ == "__main__":
    main()
