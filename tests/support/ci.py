"""Under CI (`CI=true`, set by `.ci/run`) no test may be skipped: a missing server, browser or
package is an error there, so a green CI run always means every test ran.

Tests that need something the machine may lack call `unavailable()` instead of `pytest.skip()`;
`tests/conftest.py` also turns any other skip into a failure under CI.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def unavailable(reason: str) -> NoReturn:
    """Skip with `reason` (printed) on a developer's machine; fail under CI."""
    if under_ci():
        pytest.fail(f"{reason} (CI=true: this test must run, not be skipped)", pytrace=False)
    print(f"\nSKIP: {reason}")
    pytest.skip(reason)
