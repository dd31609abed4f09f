"""API key checks are constant-time."""

from __future__ import annotations

import hmac

import pytest

from amogate.api import auth
from amogate.errors import AuthenticationFailed, Forbidden


def test_keys_are_compared_with_a_constant_time_function() -> None:
    assert auth.compare_digest is hmac.compare_digest


def test_the_admin_key_is_accepted_and_near_misses_are_not() -> None:
    authenticator = auth.ApiKeyAuthenticator("correct-horse-battery-staple")
    assert authenticator.authenticate("correct-horse-battery-staple").key_id == "admin"
    for guess in ("correct-horse-battery-stapl", "correct-horse-battery-staple ", "", None):
        with pytest.raises(AuthenticationFailed):
            authenticator.authenticate(guess)


def test_a_key_without_a_scope_is_refused_with_the_scope_named() -> None:
    principal = auth.Principal(key_id="k1", name="site", scopes=frozenset({"leads:write"}))
    principal.require("leads:write")
    with pytest.raises(Forbidden, match="API key lacks scope info:read"):
        principal.require("info:read")
