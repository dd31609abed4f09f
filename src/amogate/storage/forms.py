"""Public forms and their submissions (`amogate forms ...`, `POST /api/v1/forms/<form_id>`).

A form is found by the SHA-256 digest of the id in its endpoint: the id itself is never stored,
so the database cannot give it away, and the lookup compares digests, not the caller's text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from amogate.storage.deliveries import ERASED_PAYLOAD
from amogate.storage.tables import deliveries, form_submissions, forms

ACCEPTED = "accepted"
SPAM = "spam"
# The status of a spam submission's delivery: stored for the record, never claimed by a worker
# (workers take only queued and retrying deliveries).
SPAM_STATUS = "spam"


@dataclass(frozen=True)
class FormRow:
    id: str
    name: str
    account_key: str
    id_hash: str
    id_hint: str
    origins: tuple[str, ...]
    success_url: str | None
    pipeline_id: int | None
    tags: tuple[str, ...]
    field_map: dict[str, str]
    honeypot: str
    captcha: str | None
    captcha_secret: str | None
    rate_per_minute: int | None
    created_at: datetime
    mode: str | None = None  # the leads' default "mode" ("lead": straight into a stage)

    def __repr__(self) -> str:  # the captcha secret must never reach a log line
        return f"FormRow(id={self.id!r}, name={self.name!r}, account={self.account_key!r})"


@dataclass(frozen=True)
class Submission:
    delivery_id: str
    tranid: str | None
    outcome: str
    created_at: datetime
    status: str | None  # the delivery's status (None once the delivery row is gone)
    lead_name: str
    amo_lead_id: int | None


def _form(m: Any) -> FormRow:
    return FormRow(
        id=m["id"],
        name=m["name"],
        account_key=m["account_key"],
        id_hash=m["id_hash"],
        id_hint=m["id_hint"],
        origins=tuple(m["origins"] or ()),
        success_url=m["success_url"],
        pipeline_id=m["pipeline_id"],
        tags=tuple(m["tags"] or ()),
        field_map=dict(m["field_map"] or {}),
        honeypot=m["honeypot"],
        captcha=m["captcha"],
        captcha_secret=m["captcha_secret"],
        rate_per_minute=m["rate_per_minute"],
        created_at=m["created_at"],
        mode=m["mode"],
    )


async def create(conn: AsyncConnection, row: dict[str, Any]) -> bool:
    """Insert a form (`row`: the columns of `forms`); False when the name is taken."""
    if await by_name(conn, str(row["name"])) is not None:
        return False
    await conn.execute(insert(forms).values(**row))
    return True


async def by_hash(conn: AsyncConnection, id_hash: str) -> FormRow | None:
    row = (await conn.execute(select(forms).where(forms.c.id_hash == id_hash))).first()
    return None if row is None else _form(row._mapping)


async def by_name(conn: AsyncConnection, name_or_id: str) -> FormRow | None:
    query = select(forms).where(or_(forms.c.name == name_or_id, forms.c.id == name_or_id))
    row = (await conn.execute(query)).first()
    return None if row is None else _form(row._mapping)


async def list_all(conn: AsyncConnection) -> list[FormRow]:
    rows = await conn.execute(select(forms).order_by(forms.c.created_at, forms.c.name))
    return [_form(r._mapping) for r in rows]


async def all_origins(conn: AsyncConnection) -> set[str]:
    found: set[str] = set()
    for (origins,) in await conn.execute(select(forms.c.origins)):
        found.update(origins or ())
    return found


async def remove(conn: AsyncConnection, name_or_id: str) -> FormRow | None:
    """Delete a form and its submission records (its leads stay in the queue)."""
    row = await by_name(conn, name_or_id)
    if row is not None:
        await conn.execute(delete(form_submissions).where(form_submissions.c.form_id == row.id))
        await conn.execute(delete(forms).where(forms.c.id == row.id))
    return row


async def insert_delivery(conn: AsyncConnection, row: dict[str, Any]) -> None:
    """Insert a form's lead into the delivery queue (`row`: `deliveries.delivery_row(...)`
    with the form's account, and `SPAM_STATUS` for spam)."""
    await conn.execute(insert(deliveries).values(**row))


async def submission_by_tranid(conn: AsyncConnection, form_id: str, tranid: str) -> str | None:
    """The delivery id of an earlier submission with this `tranid`, if any."""
    query = select(form_submissions.c.delivery_id).where(
        form_submissions.c.form_id == form_id, form_submissions.c.tranid == tranid
    )
    value = (await conn.execute(query)).scalar()
    return None if value is None else str(value)


async def record_submission(
    conn: AsyncConnection,
    *,
    form_id: str,
    delivery_id: str,
    tranid: str | None,
    outcome: str,
    now: datetime,
) -> bool:
    """Record a submission in the caller's transaction; False when its `tranid` was already
    recorded (a concurrent repeat: the caller rolls back and answers with the first one)."""
    try:
        async with conn.begin_nested():
            await conn.execute(
                insert(form_submissions).values(
                    form_id=form_id,
                    delivery_id=delivery_id,
                    tranid=tranid,
                    outcome=outcome,
                    created_at=now,
                )
            )
    except IntegrityError:
        return False
    return True


async def recent_submissions(
    conn: AsyncConnection, form_id: str, *, limit: int = 20
) -> list[Submission]:
    query = (
        select(
            form_submissions.c.delivery_id,
            form_submissions.c.tranid,
            form_submissions.c.outcome,
            form_submissions.c.created_at,
            deliveries.c.status,
            deliveries.c.lead_name,
            deliveries.c.amo_lead_id,
        )
        .select_from(
            form_submissions.outerjoin(
                deliveries, deliveries.c.id == form_submissions.c.delivery_id
            )
        )
        .where(form_submissions.c.form_id == form_id)
        .order_by(form_submissions.c.created_at.desc(), form_submissions.c.id.desc())
        .limit(limit)
    )
    return [
        Submission(
            delivery_id=r.delivery_id,
            tranid=r.tranid,
            outcome=r.outcome,
            created_at=r.created_at,
            status=r.status,
            lead_name=r.lead_name or "",
            amo_lead_id=r.amo_lead_id,
        )
        for r in await conn.execute(query)
    ]


async def submission_counts(conn: AsyncConnection, form_ids: Sequence[str]) -> dict[str, int]:
    if not form_ids:
        return {}
    query = (
        select(form_submissions.c.form_id, func.count())
        .where(form_submissions.c.form_id.in_(list(form_ids)))
        .group_by(form_submissions.c.form_id)
    )
    return {str(form_id): int(count) for form_id, count in await conn.execute(query)}


async def erase_spam(
    conn: AsyncConnection, *, received_before: datetime, now: datetime, limit: int
) -> int:
    """Erase what up to `limit` spam submissions received before `received_before` carried
    (spam is never delivered, so the delivered leads' retention would never reach it)."""
    ids = [
        row.id
        for row in await conn.execute(
            select(deliveries.c.id)
            .where(
                deliveries.c.status == SPAM_STATUS,
                deliveries.c.erased_at.is_(None),
                deliveries.c.created_at < received_before,
            )
            .order_by(deliveries.c.created_at)
            .limit(limit)
        )
    ]
    if ids:
        await conn.execute(
            update(deliveries)
            .where(deliveries.c.id.in_(ids))
            .values(
                payload=ERASED_PAYLOAD, received=None, lead_name="", contact_name="", erased_at=now
            )
        )
    return len(ids)
