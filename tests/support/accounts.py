"""Several amoCRM accounts for acceptance tests: one sandbox process per account, the gateway's
accounts pointed at them with `amogate accounts add --base-url`, connected with
`amogate auth exchange --account`, and keys bound to them with `amogate keys create --account`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

from amogate.amocrm.sandbox.runner import SandboxServer
from tests.support.processes import run_amogate

VIEWER_TOKEN = "sandbox-viewer-token"  # a long-lived token for reading each sandbox's API
FIRST_ACCOUNT_ID = 31_300_000


@contextmanager
def sandboxes(names: list[str], **config: Any) -> Iterator[dict[str, SandboxServer]]:
    """One sandbox process per account name, each its own amoCRM account (subdomain, id)."""
    with ExitStack() as stack:
        yield {
            name: stack.enter_context(
                SandboxServer(
                    subdomain=f"acct-{name}",
                    account_id=FIRST_ACCOUNT_ID + n,
                    long_lived_token=VIEWER_TOKEN,
                    **config,
                )
            )
            for n, name in enumerate(names)
        }


def default_settings(sandbox: SandboxServer, database_url: str) -> dict[str, str]:
    """The `.env` account (`default`) pointed at `sandbox`."""
    return {
        "DATABASE_URL": database_url,
        "AMO_BASE_URL": sandbox.url,
        "AMO_CLIENT_ID": sandbox.config.client_id,
        "AMO_CLIENT_SECRET": sandbox.config.client_secret,
        "AMO_REDIRECT_URI": sandbox.config.redirect_uri,
    }


def amogate(tmp_path: Path, env: dict[str, str], *args: str) -> str:
    """Run one CLI command that must succeed; its output."""
    done = run_amogate(tmp_path, env, *args)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def add_and_connect(
    tmp_path: Path, env: dict[str, str], boxes: dict[str, SandboxServer], **extra: str
) -> None:
    """Add every non-default account (`extra`: more `accounts add` options, e.g. rate-limit),
    then connect each account with a code from its own sandbox."""
    if not env["DATABASE_URL"].startswith("sqlite"):
        amogate(tmp_path, env, "db", "upgrade")
    for name, box in boxes.items():
        if name == "default":
            continue
        options = [f"--{k.replace('_', '-')}={v}" for k, v in extra.items()]
        amogate(
            tmp_path,
            env,
            "accounts",
            "add",
            name,
            "--domain",
            f"{name}.amocrm.ru",
            "--base-url",
            box.url,
            *options,
        )
    for name, box in boxes.items():
        code = httpx.post(f"{box.url}/_sandbox/authorize", json={}).json()["code"]
        out = amogate(tmp_path, env, "auth", "exchange", code, "--account", name)
        assert out.startswith("connected to "), out


def create_key(tmp_path: Path, env: dict[str, str], name: str, account: str) -> str:
    out = amogate(
        tmp_path,
        env,
        "keys",
        "create",
        name,
        "--account",
        account,
        "--scope",
        "leads:write",
        "--scope",
        "info:read",
        "--scope",
        "deliveries:read",
    )
    return out.strip().splitlines()[-1]


def unsorted_source_uids(box: SandboxServer) -> list[str]:
    """Every unsorted form in the sandbox's amoCRM account, by source_uid (repeats kept)."""
    found: list[str] = []
    with httpx.Client(
        base_url=box.url, headers={"Authorization": f"Bearer {VIEWER_TOKEN}"}, timeout=30
    ) as http:
        for page in range(1, 200):
            answer = http.get("/api/v4/leads/unsorted", params={"limit": 250, "page": page})
            while answer.status_code == 429:  # the sandbox's own budget: wait a second
                time.sleep(1.0)
                answer = http.get("/api/v4/leads/unsorted", params={"limit": 250, "page": page})
            if answer.status_code == 204:
                break
            answer.raise_for_status()
            items = answer.json()["_embedded"]["unsorted"]
            found += [str(item["source_uid"]) for item in items]
            if len(items) < 250:
                break
    return found


def max_per_second(times: list[float]) -> int:
    """The most requests in any rolling second (each request and the second before it)."""
    times.sort()
    most, start = 0, 0
    for end, at in enumerate(times):
        while times[start] <= at - 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most
