"""API key checks are constant-time."""

from __future__ import annotations

import hmac

import pytest

from amogate.access import keys as auth
from amogate.errors import AuthenticationFailed, Forbidden


def test_keys_are_checked_by_a_constant_time_comparison_of_fixed_length_digests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every check goes through `hmac.compare_digest`, and what it compares are SHA-256
    digests: never the presented key, so neither its length nor a right prefix shows."""
    compared: list[tuple[str, str]] = []

    def recording(a: str, b: str) -> bool:
        compared.append((a, b))
        return hmac.compare_digest(a, b)

    monkeypatch.setattr(auth, "compare_digest", recording)
    secret = "correct-horse-battery-staple"
    authenticator = auth.ApiKeyAuthenticator(secret)
    for guess in ("c", secret[:-1], secret + "x" * 100):
        with pytest.raises(AuthenticationFailed):
            authenticator.authenticate(guess)
    assert authenticator.authenticate(secret).key_id == "admin"

    assert len(compared) == 4
    assert all(len(a) == len(b) == 64 for a, b in compared)
    assert all(secret[:5] not in a + b for a, b in compared)


def test_the_admin_key_is_accepted_and_near_misses_are_not() -> None:
    authenticator = auth.ApiKeyAuthenticator("correct-horse-battery-staple")
    admin = authenticator.authenticate("correct-horse-battery-staple")
    assert (admin.key_id, admin.name, admin.is_admin_key) == ("admin", "admin", True)
    for guess in ("correct-horse-battery-stapl", "correct-horse-battery-staple ", "", None):
        with pytest.raises(AuthenticationFailed):
            authenticator.authenticate(guess)


def test_a_key_without_a_scope_is_refused_with_the_scope_named() -> None:
    principal = auth.Principal(key_id="k1", name="site", scopes=frozenset({"leads:write"}))
    principal.require("leads:write")
    with pytest.raises(Forbidden, match="API key lacks scope info:read"):
        principal.require("info:read")


def test_the_admin_scope_includes_every_other_scope_and_no_other_scope_includes_admin() -> None:
    admin = auth.Principal(key_id="k1", name="ops", scopes=frozenset({"admin"}))
    for scope in auth.SCOPES:
        admin.require(scope)
    writer = auth.Principal(key_id="k2", name="site", scopes=frozenset({"leads:write"}))
    with pytest.raises(Forbidden, match="API key lacks scope admin"):
        writer.require("admin")
