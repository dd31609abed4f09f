"""docs/accounts.md, run step by step against three sandboxes (see test_first_hour.py for how
a walkthrough is run), so the accounts guide cannot go stale."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docs.test_first_hour import WAIT_S, environment, parse, run_block
from tests.support.processes import free_port

pytestmark = pytest.mark.slow

DOC = Path(__file__).resolve().parents[2] / "docs" / "accounts.md"


@pytest.fixture
def background() -> Iterator[list[subprocess.Popen[bytes]]]:
    """The sandboxes and the gateway the guide starts, stopped with their children."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in started:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_the_accounts_walkthrough_runs_as_written(
    tmp_path: Path, background: list[subprocess.Popen[bytes]]
) -> None:
    text = DOC.read_text(encoding="utf-8")
    for port in ("9095", "9096", "9097", "9098"):
        text = text.replace(port, str(free_port()))
    blocks = parse(text)
    assert len(blocks) >= 8
    env = environment()
    for block in blocks:
        if block.commands and all(c.background for c in block.commands):
            for command in block.commands:
                background.append(
                    subprocess.Popen(  # its own process group: stopped with its children
                        ["bash", "-c", command.line.rstrip().removesuffix("&")],
                        cwd=tmp_path,
                        env=env,
                        start_new_session=True,
                    )
                )
            continue
        deadline = time.monotonic() + (WAIT_S if block.wait else 0)
        while True:
            problems = run_block(block, tmp_path, env)
            if not problems or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert problems == [], "\n\n".join(problems)


def test_the_readme_points_to_the_accounts_guide() -> None:
    readme = (DOC.parents[1] / "README.md").read_text(encoding="utf-8")
    assert "(docs/accounts.md)" in readme
