"""Accounts: names, settings checked once, removal guarded by undelivered leads, and each
account's worker claiming only its own leads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from amogate.accounts import service
from amogate.accounts.config import InvalidAccountName, check_name, settings_for
from amogate.runtime import account_config_of, config_of
from amogate.settings import Settings
from amogate.storage import accounts as account_store
from amogate.storage import deliveries as store
from amogate.storage import migrate
from amogate.storage.db import Database


@pytest.mark.parametrize("name", ["b", "shop-2", "a" * 40, "0"])
def test_good_account_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "B", "a" * 41, "shop_2", "shop.uz", "шоп", "a b"])
def test_bad_account_names(name: str) -> None:
    with pytest.raises(InvalidAccountName):
        check_name(name)


async def _database(url: str) -> Database:
    db = Database(url)
    await migrate.upgrade(db)
    return db


def _queue(account: str, n: int, now: datetime) -> dict[str, object]:
    return {
        "delivery_id": f"{account}-{n}".ljust(32, "0")[:32],
        "payload": {"lead": {"name": "x"}, "contact": {}},
        "lead_name": "x",
        "contact_name": "",
        "api_key_id": None,
        "request_id": None,
        "now": now,
        "give_up_at": now + timedelta(hours=1),
        "account_key": account,
    }


async def test_an_added_account_takes_what_it_leaves_out_from_env(
    settings: Settings, database_url: str
) -> None:
    db = await _database(database_url)
    try:
        await service.add(db, "b", domain="B.amocrm.ru", rate_limit=3)
        config = await account_config_of(settings, db, "b")
        assert (config.domain, config.rate_limit) == ("b.amocrm.ru", 3)
        assert config.client_id == settings.amo_client_id
        view = settings_for(settings, config)
        assert (view.amo_domain, view.amo_rate_limit) == ("b.amocrm.ru", 3)
        assert settings.amo_rate_limit != 3  # the gateway's own settings are untouched
        with pytest.raises(service.AccountProblem, match="exists already"):
            await service.add(db, "b", domain="b.amocrm.ru")
        with pytest.raises(service.AccountProblem, match="account host"):
            await service.add(db, "c", domain="https://c.amocrm.ru/")
        with pytest.raises(service.AccountProblem, match="dedup"):
            await service.add(db, "c", domain="c.amocrm.ru", dedup="name")
        with pytest.raises(service.AccountProblem, match="both"):
            await service.add(db, "c", domain="c.amocrm.ru", client_id="id")
        async with db.read() as conn:
            assert [r.account_key for r in await account_store.added(conn)] == ["b"]
    finally:
        await db.dispose()


async def test_an_account_with_undelivered_leads_is_only_removed_when_forced(
    settings: Settings, database_url: str
) -> None:
    db = await _database(database_url)
    now = datetime.now(UTC)
    try:
        await service.add(db, "b", domain="b.amocrm.ru")
        async with db.transaction() as conn:
            await store.insert_delivery(conn, **_queue("b", 1, now))
        with pytest.raises(service.AccountProblem, match="1 undelivered"):
            await service.remove(db, "b")
        assert await service.remove(db, "b", force=True) == 1
        async with db.read() as conn:
            assert await account_store.get(conn, "b") is None
            left = await store.get_many(conn, [str(_queue("b", 1, now)["delivery_id"])])
        assert [d.status for d in left] == [store.FAILED]
        with pytest.raises(service.AccountProblem, match="cannot be removed"):
            await service.remove(db, "default")
    finally:
        await db.dispose()


async def test_each_accounts_worker_claims_only_its_own_leads(database_url: str) -> None:
    db = await _database(database_url)
    now = datetime.now(UTC)
    try:
        async with db.transaction() as conn:
            for account in ("default", "b", "c"):
                for n in range(3):
                    await store.insert_delivery(conn, **_queue(account, n, now))
        claimed: dict[str, set[str]] = {}
        for account in ("b", "default", "c"):
            async with db.transaction() as conn:
                batch = await store.claim_due(
                    conn,
                    owner=f"worker-{account}",
                    now=now,
                    lease_until=now + timedelta(minutes=1),
                    limit=50,
                    account_key=account,
                )
            claimed[account] = {d.account_key for d in batch}
            assert len(batch) == 3
        assert claimed == {"default": {"default"}, "b": {"b"}, "c": {"c"}}
    finally:
        await db.dispose()


def test_config_of_an_added_row_never_shows_its_secret() -> None:
    row = account_store.AccountRow(
        account_key="b",
        base_domain=None,
        amo_account_id=None,
        token_kind="oauth",
        access_token=None,
        refresh_token=None,
        access_expires_at=None,
        refreshed_at=None,
        state="not_authorized",
        state_reason=None,
        created_at=datetime.now(UTC),
        updated_at=datetime.now(UTC),
        added_at=datetime.now(UTC),
        amo_domain="b.amocrm.ru",
        client_secret="very-secret-value",
        long_lived_token="very-secret-token",
    )
    config = config_of(Settings(_env_file=None, api_key="k" * 20), row)
    assert "very-secret" not in repr(config)
