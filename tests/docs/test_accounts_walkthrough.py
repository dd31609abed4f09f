"""docs/accounts.md, run step by step against three sandboxes (see tests/docs/walkthrough.py),
so the accounts guide cannot go stale."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.docs.walkthrough import run_walkthrough

pytestmark = pytest.mark.slow

DOC = Path(__file__).resolve().parents[2] / "docs" / "accounts.md"


def test_the_accounts_walkthrough_runs_as_written(
    tmp_path: Path, background: list[subprocess.Popen[bytes]]
) -> None:
    run_walkthrough(DOC, tmp_path, background, ports=("9095", "9096", "9097", "9098"), min_blocks=8)


def test_the_readme_points_to_the_accounts_guide() -> None:
    readme = (DOC.parents[1] / "README.md").read_text(encoding="utf-8")
    assert "(docs/accounts.md)" in readme
