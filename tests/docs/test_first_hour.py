"""docs/first-hour.md, run step by step against the sandbox (see tests/docs/walkthrough.py), so
the walkthrough cannot go stale."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.docs.walkthrough import run_walkthrough

pytestmark = pytest.mark.slow

DOC = Path(__file__).resolve().parents[2] / "docs" / "first-hour.md"


def test_the_first_hour_walkthrough_runs_as_written(
    tmp_path: Path, background: list[subprocess.Popen[bytes]]
) -> None:
    run_walkthrough(DOC, tmp_path, background, ports=("9095", "9096"), min_blocks=15)


def test_the_readme_points_to_the_walkthrough() -> None:
    readme = (DOC.parents[1] / "README.md").read_text(encoding="utf-8")
    assert "(docs/first-hour.md)" in readme
