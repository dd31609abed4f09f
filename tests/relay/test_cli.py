"""`amogate webhooks ...` and `amogate sandbox --webhook-*` as real processes: the secret is
printed once (never by `list`), bad input is one clear line, `connect` without PUBLIC_URL says
what to set, `deliveries` and `retry` work on the table."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.processes import free_port, gateway_env, run_amogate, wait_for_http


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return gateway_env(tmp_path, AMO_BASE_URL="http://127.0.0.1:9", **extra)


def test_add_prints_the_secret_once_and_list_and_remove_work(tmp_path: Path) -> None:
    e = env(tmp_path)
    added = run_amogate(
        tmp_path,
        e,
        "webhooks",
        "add",
        "https://shop.example.uz/amo",
        "--events",
        "status_lead,gateway.delivery_failed",
    )
    assert added.returncode == 0, added.stderr
    secret = re.search(r"whsec_[A-Za-z0-9+/=]+", added.stdout)
    assert secret is not None
    subscriber = re.search(r"Subscriber (sub_\w+) added for account default", added.stdout)
    assert subscriber is not None
    listed = run_amogate(tmp_path, e, "webhooks", "list")
    assert listed.returncode == 0
    assert subscriber.group(1) in listed.stdout
    assert "status_lead,gateway.delivery_failed" in listed.stdout
    assert secret.group(0) not in listed.stdout
    assert "whsec_" not in listed.stdout
    removed = run_amogate(tmp_path, e, "webhooks", "remove", subscriber.group(1))
    assert removed.returncode == 0
    assert run_amogate(tmp_path, e, "webhooks", "list").stdout.strip() == "No subscribers."
    again = run_amogate(tmp_path, e, "webhooks", "remove", subscriber.group(1))
    assert again.returncode == 1
    assert again.stderr.strip() == f"amogate: no subscriber {subscriber.group(1)}"


def test_bad_input_is_one_clear_line_and_changes_nothing(tmp_path: Path) -> None:
    e = env(tmp_path)
    for args, message in [
        (("ftp://x", "--events", "status_lead"), "the URL must start with http://"),
        (("https://x.uz", "--events", "status_leed"), "unknown event(s): status_leed"),
        (("https://x.uz", "--events", ","), "name at least one event"),
        (("https://x.uz", "--account", "Big Shop"), "an account name is 1-40 of a-z"),
        (("https://x.uz", "--account", "shop"), "Account not found: shop"),
    ]:
        answer = run_amogate(tmp_path, e, "webhooks", "add", *args)
        assert answer.returncode == 2
        assert message in answer.stderr
        assert len(answer.stderr.strip().splitlines()) == 1
    assert run_amogate(tmp_path, e, "webhooks", "list").stdout.strip() == "No subscribers."


def test_connect_without_public_url_says_what_to_set(tmp_path: Path) -> None:
    answer = run_amogate(tmp_path, env(tmp_path), "webhooks", "connect", "--account", "default")
    assert answer.returncode == 2
    assert answer.stderr.strip() == (
        "amogate: PUBLIC_URL is not set: set it to the address amoCRM can reach this gateway "
        "at, e.g. PUBLIC_URL=https://gateway.example.uz"
    )


def test_connect_before_amocrm_is_connected_says_so(tmp_path: Path) -> None:
    e = env(tmp_path, PUBLIC_URL="https://gateway.example.uz")
    assert run_amogate(tmp_path, e, "webhooks", "add", "https://x.uz/h").returncode == 0
    answer = run_amogate(tmp_path, e, "webhooks", "connect")
    assert answer.returncode == 1
    assert answer.stderr.strip() == (
        "amogate: amoCRM is not connected (or needs reconnecting): open /admin or run "
        "`amogate auth url` first"
    )


def test_connect_names_an_unknown_account(tmp_path: Path) -> None:
    e = env(tmp_path, PUBLIC_URL="https://gateway.example.uz")
    answer = run_amogate(tmp_path, e, "webhooks", "connect", "--account", "shop")
    assert answer.returncode == 2
    assert answer.stderr.strip() == "amogate: Account not found: shop"


def test_deliveries_and_retry_on_an_empty_table(tmp_path: Path) -> None:
    e = env(tmp_path)
    listed = run_amogate(tmp_path, e, "webhooks", "deliveries", "--status", "failed")
    assert listed.stdout.strip() == "No webhook deliveries in state failed."
    wrong = run_amogate(tmp_path, e, "webhooks", "deliveries", "--status", "lost")
    assert wrong.returncode == 2
    assert "--status must be one of queued, sending, retrying, delivered, failed" in wrong.stderr
    assert run_amogate(tmp_path, e, "webhooks", "retry", "--failed").stdout.strip() == (
        "0 webhook deliveries queued again"
    )
    unknown = run_amogate(tmp_path, e, "webhooks", "retry", "whd_nothing")
    assert unknown.returncode == 1
    assert "unknown or has not failed" in unknown.stderr


def test_the_sandbox_command_takes_the_webhook_flags(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "amogate",
            "sandbox",
            "--port",
            str(port),
            "--webhook-timeout-s",
            "0.5",
            "--webhook-retry-factor",
            "0.001",
            "--webhook-disable-failures",
            "3",
            "--webhook-disable-window-s",
            "60",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/_sandbox/stats", process=process)
        shown = httpx.get(f"{url}/_sandbox/settings", timeout=5).json()
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert {k: v for k, v in shown.items() if k.startswith("webhook_")} == {
        "webhook_timeout_s": 0.5,
        "webhook_retry_factor": 0.001,
        "webhook_disable_failures": 3,
        "webhook_disable_window_s": 60.0,
    }
