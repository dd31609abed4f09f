"""Fixtures of the walkthrough tests."""

from tests.docs.walkthrough import background

__all__ = ["background"]
