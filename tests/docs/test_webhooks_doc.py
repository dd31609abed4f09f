"""docs/webhooks.md, run step by step against the sandbox like docs/first-hour.md: the
subscriber, the receiver snippet (it must verify amogate's signature and refuse a forged one),
`webhooks connect`, a status change arriving signed. Ports 9095, 9096 and 9097 are replaced
with free ones."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.docs.walkthrough import run_walkthrough

pytestmark = pytest.mark.slow

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def test_the_webhooks_walkthrough_runs_as_written(
    tmp_path: Path, background: list[subprocess.Popen[bytes]]
) -> None:
    run_walkthrough(DOC, tmp_path, background, ports=("9095", "9096", "9097"), min_blocks=10)


def test_the_readme_points_to_the_webhooks_page() -> None:
    readme = (DOC.parents[1] / "README.md").read_text(encoding="utf-8")
    assert "(docs/webhooks.md)" in readme
