"""API keys as a domain: the account a call acts on, and one set of rules for new keys."""

from __future__ import annotations

import pytest

from amogate.access import keys
from amogate.errors import Forbidden


def test_the_admin_acts_on_default_or_on_the_account_it_names() -> None:
    admin = keys.admin_principal()
    assert admin.acting_on(None).account == "default"
    assert admin.acting_on("b").account == "b"


def test_a_key_with_the_admin_scope_may_name_another_account() -> None:
    operator = keys.Principal(key_id="k", name="ops", scopes=frozenset({"admin"}), account="b")
    assert operator.acting_on("c").account == "c"


def test_a_key_may_name_its_own_account_but_not_another() -> None:
    site = keys.Principal(key_id="k", name="site", scopes=frozenset({"leads:write"}), account="b")
    assert site.acting_on("b") is site
    assert site.acting_on(None) is site
    with pytest.raises(Forbidden):
        site.acting_on("c")
    with pytest.raises(Forbidden):
        site.acting_on("default")


@pytest.mark.parametrize(
    ("name", "scopes", "origins", "rate", "account", "problem"),
    [
        ("", ["leads:write"], [], None, "default", "keys.error_name"),
        ("x" * 129, ["leads:write"], [], None, "default", "keys.error_name"),
        ("site", [], [], None, "default", "keys.error_scopes"),
        ("site", ["leads:write", "root"], [], None, "default", "keys.error_scopes"),
        ("site", ["leads:write"], ["ftp://site.uz"], None, "default", "keys.error_origin"),
        ("site", ["leads:write"], ["https://site.uz/path"], None, "default", "keys.error_origin"),
        ("site", ["leads:write"], [], 0, "default", "keys.error_rate"),
        ("site", ["leads:write"], [], 100_001, "default", "keys.error_rate"),
        ("site", ["leads:write"], [], None, "Shop", "keys.error_account"),
    ],
)
def test_a_bad_key_request_is_refused_with_what_is_wrong(
    name: str,
    scopes: list[str],
    origins: list[str],
    rate: int | None,
    account: str,
    problem: str,
) -> None:
    with pytest.raises(keys.KeyProblem) as refused:
        keys.key_request(name, scopes, origins, rate, account)
    assert refused.value.message_id == problem
    assert refused.value.text


def test_a_good_key_request_keeps_scopes_in_order_and_origins_once() -> None:
    wanted = keys.key_request(
        " site ",
        ["info:read", "leads:write"],
        ["https://site.uz/", "https://site.uz", " "],
        100_000,
        "shop-2",
    )
    assert wanted == keys.KeyRequest(
        "site", ["leads:write", "info:read"], ["https://site.uz"], 100_000, "shop-2"
    )


def test_the_admin_page_and_the_cli_share_the_rate_cap() -> None:
    from amogate.web.actions import KeyProblem, parse_key_request

    refused = parse_key_request("site", ["leads:write"], "", str(keys.MAX_RATE_PER_MINUTE + 1))
    assert refused == KeyProblem("keys.error_rate", {})
    accepted = parse_key_request("site", ["leads:write"], "", str(keys.MAX_RATE_PER_MINUTE))
    assert isinstance(accepted, keys.KeyRequest)
