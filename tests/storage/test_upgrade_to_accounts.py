"""A database of the single-account release (revision 0004) with queued leads, a token and an
API key is upgraded to accounts (0005): the leads are delivered to `default` with the token it
held, and the key acts on `default`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Connection

from amogate.access.keys import key_digest
from amogate.amocrm.sandbox.app import create_sandbox_app
from amogate.amocrm.sandbox.config import SandboxConfig
from amogate.amocrm.sandbox.transport import SandboxTransport
from amogate.app import create_app
from amogate.app_state import state_of
from amogate.leads import mapping
from amogate.leads.reading import parse_lead_request
from amogate.settings import Settings
from amogate.storage import migrate
from amogate.storage.db import Database
from tests.support.gateway import SANDBOX_URL, sandbox_settings

LEADS = 5
KEY = "amg_released-key-0123456789abcdef"


def _to_0004(connection: Connection) -> None:
    cfg = migrate.alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "0004")


async def _token_pair(sandbox: httpx.AsyncClient, config: SandboxConfig) -> dict[str, Any]:
    code = (await sandbox.post("/_sandbox/authorize", json={})).json()["code"]
    answer = await sandbox.post(
        "/oauth2/access_token",
        json={
            "client_id": config.client_id,
            "client_secret": config.client_secret,
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": config.redirect_uri,
        },
    )
    answer.raise_for_status()
    pair: dict[str, Any] = answer.json()
    return pair


async def _released_database(url: str, pair: dict[str, Any]) -> list[str]:
    """What the single-account release left behind: a token, a key and queued leads."""
    now = datetime.now(UTC)
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            await conn.run_sync(_to_0004)
            await conn.commit()
        ids = [f"released{n:024d}" for n in range(LEADS)]
        async with db.transaction() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO amo_accounts (account_key, base_domain, token_kind, access_token,"
                    " refresh_token, access_expires_at, refreshed_at, state, created_at,"
                    " updated_at) VALUES ('default', 'sandbox.test', 'oauth', :access, :refresh,"
                    " :expires, :now, 'connected', :now, :now)"
                ),
                {
                    "access": pair["access_token"],
                    "refresh": pair["refresh_token"],
                    "expires": now + timedelta(seconds=int(pair["expires_in"])),
                    "now": now,
                },
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO api_keys (id, name, key_hash, scopes, origins, created_at)"
                    " VALUES ('k1', 'site', :hash, '[\"deliveries:read\"]', '[]', :now)"
                ),
                {"hash": key_digest(KEY), "now": now},
            )
            for n, delivery_id in enumerate(ids):
                lead = parse_lead_request(
                    {"lead": {"name": f"Old lead {n}"}, "contact": {"phone": "+998901234567"}}
                )
                await conn.execute(
                    sa.text(
                        "INSERT INTO deliveries (id, account_key, status, step, payload,"
                        " lead_name, contact_name, api_key_id, attempts, created_at, updated_at,"
                        " next_attempt_at, give_up_at, outcome_unknown) VALUES (:id, 'default',"
                        " 'queued', 'form', :payload, :name, '', 'k1', 0, :now, :now, :now,"
                        " :give_up, false)"
                    ).bindparams(sa.bindparam("payload", type_=sa.JSON)),
                    {
                        "id": delivery_id,
                        "payload": mapping.stored_payload(lead, "UZ"),
                        "name": f"Old lead {n}",
                        "now": now,
                        "give_up": now + timedelta(hours=72),
                    },
                )
        return ids
    finally:
        await db.dispose()


async def test_a_released_database_is_upgraded_and_its_queued_leads_reach_default(
    settings: Settings, database_url: str
) -> None:
    config = SandboxConfig(public_url=SANDBOX_URL, rate_limit=0)
    sandbox_app = create_sandbox_app(config)
    async with httpx.AsyncClient(
        transport=SandboxTransport(sandbox_app), base_url=SANDBOX_URL
    ) as sandbox:
        pair = await _token_pair(sandbox, config)
    ids = await _released_database(database_url, pair)

    gw_settings = sandbox_settings(settings, database_url=database_url)
    if not gw_settings.is_sqlite:  # `amogate db upgrade`; SQLite is upgraded by the gateway
        db = Database(database_url)
        await migrate.upgrade(db)
        await db.dispose()
    app = create_app(gw_settings, amo_transport=SandboxTransport(sandbox_app), background=True)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway.test"
        ) as gateway,
    ):
        database = state_of(app).running().database
        assert await migrate.is_up_to_date(database)
        statuses: list[str] = []
        for _ in range(200):
            async with database.read() as conn:
                rows = (
                    await conn.execute(
                        sa.text("SELECT status, account_key FROM deliveries ORDER BY id")
                    )
                ).all()
            statuses = [row.status for row in rows]
            if statuses == ["delivered"] * LEADS:
                break
            await asyncio.sleep(0.05)
        assert {row.account_key for row in rows} == {"default"}
        seen = await gateway.get(f"/api/v1/leads/deliveries/{ids[0]}", headers={"X-API-KEY": KEY})
        async with database.read() as conn:
            key_account = (
                await conn.execute(sa.text("SELECT account_key FROM api_keys WHERE id = 'k1'"))
            ).scalar_one()

    assert statuses == ["delivered"] * LEADS
    landed = {u.source_uid for u in sandbox_app.state.sandbox.unsorted.values()}
    assert landed == set(ids)
    assert seen.status_code == 200
    assert key_account == "default"
