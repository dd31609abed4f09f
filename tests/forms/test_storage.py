"""Form storage on SQLite and PostgreSQL: a tranid stored once per form, spam never claimed by
a worker and erased after the retention period like a delivered lead's data."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from amogate.forms.intake import FormIntake
from amogate.forms.recognize import recognize
from amogate.forms.registry import NewForm, create_form
from amogate.forms.submission import FormSettings, Visit, read_submission
from amogate.leads.schemas import LeadRequest
from amogate.storage import deliveries as store
from amogate.storage import forms as form_store
from amogate.storage import migrate
from amogate.storage.db import Database
from amogate.worker.retention import RetentionPurge

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await migrate.upgrade(database)
    try:
        yield database
    finally:
        await database.dispose()


async def a_form(db: Database) -> form_store.FormRow:
    async with db.transaction() as conn:
        created = await create_form(conn, NewForm("Landing"), NOW)
        row = await form_store.by_name(conn, created.handle)
    assert row is not None
    return row


def intake(db: Database, at: datetime = NOW) -> FormIntake:
    return FormIntake(db, "UZ", timedelta(hours=72), clock=lambda: at)


def lead(phone: str = "+998901234567") -> LeadRequest:
    found = recognize([("name", "Odam"), ("phone", phone)], {})
    return read_submission(found, FormSettings("Landing"), Visit())


async def test_a_tranid_is_stored_once_per_form(db: Database) -> None:
    form = await a_form(db)
    first = await intake(db).store(
        form, lead(), received=[], tranid="t-1", spam=False, request_id=None
    )
    again = await intake(db).store(
        form, lead(), received=[], tranid="t-1", spam=False, request_id=None
    )
    assert again.delivery_id == first.delivery_id
    assert again.repeated
    assert not first.repeated
    async with db.read() as conn:
        assert len(await store.list_deliveries(conn)) == 1
        submissions = await form_store.recent_submissions(conn, form.id)
    assert [s.tranid for s in submissions] == ["t-1"]


async def test_the_same_tranid_posted_at_once_makes_one_delivery(database_url: str) -> None:
    # Two engines: two gateway instances sharing the database.
    first_db, second_db = Database(database_url), Database(database_url)
    await migrate.upgrade(first_db)
    try:
        form = await a_form(first_db)
        results = await asyncio.gather(
            *(
                intake(db).store(
                    form, lead(), received=[], tranid="same", spam=False, request_id=None
                )
                for db in (first_db, second_db, first_db, second_db)
            )
        )
        assert len({r.delivery_id for r in results}) == 1
        assert sum(not r.repeated for r in results) == 1
        async with first_db.read() as conn:
            assert len(await store.list_deliveries(conn)) == 1
    finally:
        await first_db.dispose()
        await second_db.dispose()


async def test_spam_is_never_claimed_and_is_erased_after_the_retention_period(
    db: Database,
) -> None:
    form = await a_form(db)
    old = await intake(db, NOW - timedelta(days=31)).store(
        form, lead(), received=[("name", "Bot")], tranid=None, spam=True, request_id=None
    )
    young = await intake(db, NOW - timedelta(days=1)).store(
        form, lead(), received=[("name", "Bot")], tranid=None, spam=True, request_id=None
    )
    async with db.transaction() as conn:
        claimed = await store.claim_due(conn, owner="w", now=NOW, lease_until=NOW, limit=50)
    assert claimed == []
    purge = RetentionPurge(db, retention=timedelta(days=30), interval_s=60, clock=lambda: NOW)
    report = await purge.run_once()
    assert report.erased == 1
    async with db.read() as conn:
        erased = await store.get(conn, old.delivery_id)
        kept = await store.get(conn, young.delivery_id)
    assert erased is not None
    assert erased.payload == {}
    assert erased.received is None
    assert erased.status == form_store.SPAM_STATUS
    assert kept is not None
    assert kept.payload["contact"]["name"] == "Odam"
