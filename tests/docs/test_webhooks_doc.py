"""docs/webhooks.md, run step by step against the sandbox like docs/first-hour.md: the
subscriber, the receiver snippet (it must verify amogate's signature and refuse a forged one),
`webhooks connect`, a status change arriving signed. Ports 9095, 9096 and 9097 are replaced
with free ones."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.docs.test_first_hour import (  # the fixture stops the background processes
    WAIT_S,
    background,  # noqa: F401
    environment,
    parse,
    run_block,
)
from tests.support.processes import free_port

pytestmark = pytest.mark.slow

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def test_the_webhooks_walkthrough_runs_as_written(
    tmp_path: Path,
    background: list[subprocess.Popen[bytes]],  # noqa: F811
) -> None:
    text = DOC.read_text(encoding="utf-8")
    for port in ("9095", "9096", "9097"):
        text = text.replace(port, str(free_port()))
    blocks = parse(text)
    assert len(blocks) >= 10
    env = environment()
    for block in blocks:
        if block.commands and all(c.background for c in block.commands):
            for command in block.commands:
                background.append(
                    subprocess.Popen(
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


def test_the_readme_points_to_the_webhooks_page() -> None:
    readme = (DOC.parents[1] / "README.md").read_text(encoding="utf-8")
    assert "(docs/webhooks.md)" in readme
