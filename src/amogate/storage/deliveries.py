"""The delivery queue: `deliveries` rows (one per accepted lead) and `delivery_attempts`.

State machine of a delivery (`status`, with `step` saying what is left to do):

    queued ──claim──> sending ──form ok──> sending(step=note) ──note ok──> delivered
                        │  ╲                     │
                        │   ╲ amoCRM said no     │ amoCRM unavailable, 429, 401, 402, 403
                        │    ╰─────> failed      ╰──────> retrying ──claim (when due)──> sending
                        ╰─ worker died: the lease runs out and another worker claims it again

Claiming takes due rows and leases them to one worker: on PostgreSQL with
`FOR UPDATE SKIP LOCKED`, so concurrent workers never take the same row; on SQLite the caller's
transaction is `BEGIN IMMEDIATE` (one writer at a time), which gives the same guarantee.
`outcome_unknown` is set right before a form is sent and cleared when amoCRM's answer is known,
so a crash or timeout in between makes the next claim reconcile before re-sending.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from amogate.storage import leases
from amogate.storage.db import Database
from amogate.storage.tables import deliveries, delivery_attempts

QUEUED = "queued"
SENDING = "sending"
RETRYING = "retrying"
DELIVERED = "delivered"
FAILED = "failed"
STATUSES = (QUEUED, SENDING, RETRYING, DELIVERED, FAILED)
TERMINAL = (DELIVERED, FAILED)

STEP_FORM = "form"
STEP_NOTE = "note"
STEP_DONE = "done"

DETAIL_LIMIT = 2000


@dataclass(frozen=True)
class Delivery:
    id: str
    status: str
    step: str
    payload: dict[str, Any]
    received: Any  # the request body as the client sent it (None for older leads)
    lead_name: str
    contact_name: str
    api_key_id: str | None
    request_id: str | None  # the X-Request-ID of the intake request, for log correlation
    attempts: int
    created_at: datetime
    updated_at: datetime
    next_attempt_at: datetime
    give_up_at: datetime
    lease_owner: str | None
    lease_until: datetime | None
    outcome_unknown: bool
    last_error: str | None
    error_details: dict[str, Any] | None
    warnings: list[dict[str, str]]
    amo_uid: str | None
    amo_lead_id: int | None
    amo_contact_id: int | None
    amo_note_id: int | None
    delivered_at: datetime | None
    erased_at: datetime | None = None  # personal data erased after the retention period
    account_key: str = "default"  # the amoCRM account the lead goes to
    contact_matched: bool | None = None  # linked to a contact that existed before the lead

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True)
class Attempt:
    step: str
    started_at: datetime
    duration_ms: int
    outcome: str
    http_status: int | None
    detail: str | None


def _delivery(row: Row[Any]) -> Delivery:
    m = row._mapping
    return Delivery(
        id=m["id"],
        status=m["status"],
        step=m["step"],
        payload=m["payload"],
        received=m["received"],
        lead_name=m["lead_name"],
        contact_name=m["contact_name"],
        api_key_id=m["api_key_id"],
        request_id=m["request_id"],
        attempts=m["attempts"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        next_attempt_at=m["next_attempt_at"],
        give_up_at=m["give_up_at"],
        lease_owner=m["lease_owner"],
        lease_until=m["lease_until"],
        outcome_unknown=bool(m["outcome_unknown"]),
        last_error=m["last_error"],
        error_details=m["error_details"],
        warnings=list(m["warnings"] or []),
        amo_uid=m["amo_uid"],
        amo_lead_id=m["amo_lead_id"],
        amo_contact_id=m["amo_contact_id"],
        amo_note_id=m["amo_note_id"],
        delivered_at=m["delivered_at"],
        account_key=m["account_key"],
        erased_at=m["erased_at"],
        contact_matched=m["contact_matched"],
    )


# --- intake -------------------------------------------------------------------------------------


def delivery_row(
    *,
    delivery_id: str,
    payload: dict[str, Any],
    received: Any = None,
    lead_name: str,
    contact_name: str,
    api_key_id: str | None,
    request_id: str | None,
    now: datetime,
    give_up_at: datetime,
    warnings: list[dict[str, str]] | None = None,
    account_key: str = "default",
) -> dict[str, Any]:
    """A new queued delivery, as a row of `deliveries`."""
    return {
        "warnings": warnings or None,
        "id": delivery_id,
        "account_key": account_key,
        "status": QUEUED,
        "step": STEP_FORM,
        "payload": payload,
        "received": received,
        "lead_name": lead_name[:255],
        "contact_name": contact_name[:255],
        "api_key_id": api_key_id,
        "request_id": request_id[:128] if request_id else None,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
        "next_attempt_at": now,
        "give_up_at": give_up_at,
        "outcome_unknown": False,
    }


async def insert_delivery(conn: AsyncConnection, **fields: Any) -> None:
    """Insert a new delivery inside the caller's transaction (fields: see `delivery_row`)."""
    await conn.execute(insert(deliveries).values(delivery_row(**fields)))


async def insert_delivery_grouped(database: Database, **fields: Any) -> None:
    """Insert a new delivery through the group commit; durable when it returns."""
    await database.grouped_insert(deliveries, delivery_row(**fields))


# --- reading ------------------------------------------------------------------------------------


async def get(
    conn: AsyncConnection, delivery_id: str, *, api_key_id: str | None = None
) -> Delivery | None:
    """One delivery. With `api_key_id`, only a delivery that key created: a key never learns
    anything about another key's leads (None, like an unknown id)."""
    query = select(deliveries).where(deliveries.c.id == delivery_id)
    if api_key_id is not None:
        query = query.where(deliveries.c.api_key_id == api_key_id)
    row = (await conn.execute(query)).first()
    return None if row is None else _delivery(row)


async def get_many(conn: AsyncConnection, ids: Sequence[str]) -> list[Delivery]:
    if not ids:
        return []
    rows = await conn.execute(select(deliveries).where(deliveries.c.id.in_(list(ids))))
    return [_delivery(row) for row in rows]


async def list_deliveries(
    conn: AsyncConnection, *, status: str | None = None, limit: int = 50
) -> list[Delivery]:
    query = select(deliveries).order_by(deliveries.c.created_at.desc(), deliveries.c.id)
    if status is not None:
        query = query.where(deliveries.c.status == status)
    rows = await conn.execute(query.limit(limit))
    return [_delivery(row) for row in rows]


async def count_by_status(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(
        select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
    )
    return {str(status): int(count) for status, count in rows}


async def attempts_of(conn: AsyncConnection, delivery_id: str) -> list[Attempt]:
    rows = await conn.execute(
        select(delivery_attempts)
        .where(delivery_attempts.c.delivery_id == delivery_id)
        .order_by(delivery_attempts.c.id)
    )
    return [
        Attempt(
            step=r.step,
            started_at=r.started_at,
            duration_ms=r.duration_ms,
            outcome=r.outcome,
            http_status=r.http_status,
            detail=r.detail,
        )
        for r in rows
    ]


# --- the worker's side --------------------------------------------------------------------------


def _due(now: datetime) -> Any:
    waiting = and_(deliveries.c.status.in_((QUEUED, RETRYING)), deliveries.c.next_attempt_at <= now)
    abandoned = and_(deliveries.c.status == SENDING, deliveries.c.lease_until < now)
    return or_(waiting, abandoned)


async def claim_due(
    conn: AsyncConnection,
    *,
    owner: str,
    now: datetime,
    lease_until: datetime,
    limit: int,
    account_key: str | None = None,
) -> list[Delivery]:
    """Lease up to `limit` due deliveries (oldest first) to `owner`, of one account when
    `account_key` is given. Call inside a write transaction; rows another transaction holds
    are skipped, never waited for."""
    due = _due(now)
    if account_key is not None:
        due = and_(deliveries.c.account_key == account_key, due)
    candidates = (
        select(deliveries.c.id)
        .where(due)
        .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = [row.id for row in await conn.execute(candidates)]
    if not ids:
        return []
    await conn.execute(
        update(deliveries)
        .where(deliveries.c.id.in_(ids))
        .values(status=SENDING, lease_owner=owner, lease_until=lease_until, updated_at=now)
    )
    claimed = await get_many(conn, ids)
    return sorted(claimed, key=lambda d: (d.next_attempt_at, d.id))


async def mark_sending_form(
    conn: AsyncConnection, ids: Sequence[str], *, owner: str, now: datetime
) -> None:
    """About to send these forms: until the answer is known, their outcome is unknown."""
    await conn.execute(
        update(deliveries)
        .where(deliveries.c.id.in_(list(ids)), deliveries.c.lease_owner == owner)
        .values(outcome_unknown=True, updated_at=now)
    )


@dataclass(frozen=True)
class FormCreated:
    """A form amoCRM created (or that reconciliation found) for one delivery."""

    delivery_id: str
    uid: str | None
    lead_id: int | None
    contact_id: int | None
    contact_matched: bool | None = None
    # The payload and warnings with what building the form set aside (None: nothing was).
    remarked: tuple[dict[str, Any], list[dict[str, str]]] | None = None


async def mark_forms_created(
    conn: AsyncConnection, created: Sequence[FormCreated], *, owner: str, now: datetime
) -> set[str]:
    """The forms are in amoCRM: their deliveries go on to the note. Returns the ids this worker
    still held (only those change). A few statements for the whole batch, each row's values as
    executemany parameters: one statement per row held SQLite's single writer for as long as
    the event loop took to come back to each of them (50 ms for 50 leads under load)."""
    if not created:
        return set()
    ids = [c.delivery_id for c in created]
    held = select(deliveries.c.id).where(
        deliveries.c.id.in_(ids), deliveries.c.lease_owner == owner
    )
    owned = set((await conn.execute(held.with_for_update())).scalars())
    rows = [c for c in created if c.delivery_id in owned]
    # The payload is rewritten only where something was set aside: the common case stays small.
    for group in ([c for c in rows if c.remarked is None], [c for c in rows if c.remarked]):
        if not group:
            continue
        values: dict[str, Any] = {
            "step": STEP_NOTE,
            "outcome_unknown": False,
            "amo_uid": bindparam("b_uid"),
            "amo_lead_id": bindparam("b_lead_id"),
            "amo_contact_id": bindparam("b_contact_id"),
            "contact_matched": bindparam("b_matched", type_=deliveries.c.contact_matched.type),
            "attempts": deliveries.c.attempts + 1,
            "last_error": None,
            "updated_at": now,
        }
        if group[0].remarked is not None:
            values["payload"] = bindparam("b_payload", type_=deliveries.c.payload.type)
            values["warnings"] = bindparam("b_warnings", type_=deliveries.c.warnings.type)
        statement = update(deliveries).where(
            deliveries.c.id == bindparam("b_id"), deliveries.c.lease_owner == owner
        )
        await conn.execute(statement.values(values), [_created_params(c) for c in group])
    return owned


def _created_params(created: FormCreated) -> dict[str, Any]:
    params: dict[str, Any] = {
        "b_id": created.delivery_id,
        "b_uid": created.uid,
        "b_lead_id": created.lead_id,
        "b_contact_id": created.contact_id,
        "b_matched": created.contact_matched,
    }
    if created.remarked is not None:
        params["b_payload"], params["b_warnings"] = created.remarked
    return params


async def replace_payload(
    conn: AsyncConnection,
    delivery_id: str,
    *,
    owner: str,
    now: datetime,
    payload: dict[str, Any],
    warnings: list[dict[str, str]],
) -> bool:
    """The lead without values amoCRM refused (they are in its remarks now)."""
    return await leases.change(
        conn,
        deliveries,
        delivery_id,
        owner=owner,
        payload=payload,
        warnings=warnings or None,
        updated_at=now,
    )


@dataclass(frozen=True)
class NoteOutcome:
    """How one lead's note went, for `mark_delivered_many`."""

    delivery_id: str
    note_id: int | None
    note_error: str | None


async def mark_delivered_many(
    conn: AsyncConnection, outcomes: Sequence[NoteOutcome], *, owner: str, now: datetime
) -> None:
    """`mark_delivered` for a batch in ONE statement (executemany): a transaction of a few
    statements holds SQLite's single writer for a moment, where one per row held it for as
    long as the event loop took to come back to each of them."""
    if not outcomes:
        return
    await conn.execute(
        update(deliveries)
        .where(
            deliveries.c.id == bindparam("b_id"),
            deliveries.c.lease_owner == bindparam("b_owner"),
        )
        .values(
            status=DELIVERED,
            step=STEP_DONE,
            outcome_unknown=False,
            amo_note_id=bindparam("b_note_id"),
            last_error=bindparam("b_note_error"),
            delivered_at=now,
            lease_owner=None,
            lease_until=None,
            updated_at=now,
        ),
        [
            {
                "b_id": o.delivery_id,
                "b_owner": owner,
                "b_note_id": o.note_id,
                "b_note_error": o.note_error,
            }
            for o in outcomes
        ],
    )


async def mark_delivered(
    conn: AsyncConnection,
    delivery_id: str,
    *,
    owner: str,
    now: datetime,
    note_id: int | None,
    note_error: str | None = None,
) -> bool:
    return await leases.finish(
        conn,
        deliveries,
        delivery_id,
        owner=owner,
        status=DELIVERED,
        step=STEP_DONE,
        outcome_unknown=False,
        amo_note_id=note_id,
        last_error=note_error,
        delivered_at=now,
        updated_at=now,
    )


async def schedule_retry(
    conn: AsyncConnection,
    delivery_id: str,
    *,
    owner: str,
    now: datetime,
    at: datetime,
    error: str,
    count_attempt: bool,
    outcome_unknown: bool,
) -> bool:
    return await leases.finish(
        conn,
        deliveries,
        delivery_id,
        owner=owner,
        status=RETRYING,
        next_attempt_at=at,
        last_error=error[:DETAIL_LIMIT],
        attempts=deliveries.c.attempts + (1 if count_attempt else 0),
        outcome_unknown=outcome_unknown,
        updated_at=now,
    )


async def mark_failed(
    conn: AsyncConnection,
    delivery_id: str,
    *,
    owner: str,
    now: datetime,
    error: str,
    details: dict[str, Any] | None,
    count_attempt: bool = True,
) -> bool:
    return await leases.finish(
        conn,
        deliveries,
        delivery_id,
        owner=owner,
        status=FAILED,
        last_error=error[:DETAIL_LIMIT],
        error_details=details,
        attempts=deliveries.c.attempts + (1 if count_attempt else 0),
        outcome_unknown=False,
        updated_at=now,
    )


async def release(conn: AsyncConnection, ids: Sequence[str], *, owner: str, now: datetime) -> None:
    """Give leased rows back untouched (worker shutting down)."""
    if ids:
        await conn.execute(
            update(deliveries)
            .where(
                deliveries.c.id.in_(list(ids)),
                deliveries.c.lease_owner == owner,
                deliveries.c.status == SENDING,
            )
            .values(status=RETRYING, lease_owner=None, lease_until=None, updated_at=now)
        )


async def record_attempts(conn: AsyncConnection, attempts: Sequence[dict[str, Any]]) -> None:
    """`record_attempt` for a batch in ONE statement; each dict has its keyword arguments
    and `delivery_id`."""
    if not attempts:
        return
    rows = [
        {
            "delivery_id": a["delivery_id"],
            "step": a["step"],
            "started_at": a["started_at"],
            "duration_ms": max(0, a["duration_ms"]),
            "outcome": a["outcome"],
            "http_status": a["http_status"],
            "detail": None if a["detail"] is None else a["detail"][:DETAIL_LIMIT],
        }
        for a in attempts
    ]
    await conn.execute(insert(delivery_attempts), rows)


async def record_attempt(
    conn: AsyncConnection,
    delivery_id: str,
    *,
    step: str,
    started_at: datetime,
    duration_ms: int,
    outcome: str,
    http_status: int | None,
    detail: str | None,
) -> None:
    await conn.execute(
        insert(delivery_attempts).values(
            delivery_id=delivery_id,
            step=step,
            started_at=started_at,
            duration_ms=max(0, duration_ms),
            outcome=outcome,
            http_status=http_status,
            detail=None if detail is None else detail[:DETAIL_LIMIT],
        )
    )


# --- retention ----------------------------------------------------------------------------------


ERASED_PAYLOAD: dict[str, Any] = {}


async def erase_personal_data(
    conn: AsyncConnection, *, delivered_before: datetime, now: datetime, limit: int
) -> int:
    """Erase the personal data of up to `limit` leads delivered before `delivered_before`: the
    stored request (names, phones, emails, comment) as received and normalised, the names shown
    in lists, and amoCRM's answers kept with the row and its attempts (they may echo the data).
    Ids, status, times and attempt outcomes stay. Returns how many were erased."""
    ids = [
        row.id
        for row in await conn.execute(
            select(deliveries.c.id)
            .where(
                deliveries.c.erased_at.is_(None),
                deliveries.c.delivered_at < delivered_before,
                deliveries.c.status == DELIVERED,
            )
            .order_by(deliveries.c.delivered_at)
            .limit(limit)
        )
    ]
    if not ids:
        return 0
    await conn.execute(
        update(deliveries)
        .where(deliveries.c.id.in_(ids))
        .values(
            payload=ERASED_PAYLOAD,
            received=None,
            lead_name="",
            contact_name="",
            error_details=None,
            last_error=None,
            erased_at=now,
        )
    )
    await conn.execute(
        update(delivery_attempts)
        .where(delivery_attempts.c.delivery_id.in_(ids))
        .values(detail=None)
    )
    return len(ids)


# --- operators ----------------------------------------------------------------------------------


async def requeue(
    conn: AsyncConnection, delivery_id: str, *, now: datetime, give_up_at: datetime
) -> bool:
    """Send a failed (or waiting) delivery again now. Delivered ones are never re-sent."""
    result = await conn.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id, deliveries.c.status.in_((FAILED, RETRYING, QUEUED)))
        .values(
            status=RETRYING,
            next_attempt_at=now,
            give_up_at=give_up_at,
            error_details=None,
            updated_at=now,
        )
    )
    return bool(result.rowcount)


async def make_waiting_due(
    conn: AsyncConnection, *, now: datetime, account_key: str | None = None
) -> int:
    """Every queued or retrying delivery (of one account, when given) becomes due now (amoCRM
    was just (re)connected, so what waited for it need not wait for its retry). How many."""
    waiting = and_(deliveries.c.status.in_((QUEUED, RETRYING)), deliveries.c.next_attempt_at > now)
    if account_key is not None:
        waiting = and_(deliveries.c.account_key == account_key, waiting)
    result = await conn.execute(
        update(deliveries).where(waiting).values(next_attempt_at=now, updated_at=now)
    )
    return int(result.rowcount)


async def requeue_failed(conn: AsyncConnection, *, now: datetime, give_up_at: datetime) -> int:
    result = await conn.execute(
        update(deliveries)
        .where(deliveries.c.status == FAILED)
        .values(
            status=RETRYING,
            next_attempt_at=now,
            give_up_at=give_up_at,
            error_details=None,
            updated_at=now,
        )
    )
    return int(result.rowcount)


async def count_by_account(conn: AsyncConnection) -> dict[str, dict[str, int]]:
    """Deliveries per account and status: {account: {status: count}}."""
    rows = await conn.execute(
        select(deliveries.c.account_key, deliveries.c.status, func.count()).group_by(
            deliveries.c.account_key, deliveries.c.status
        )
    )
    counts: dict[str, dict[str, int]] = {}
    for account, status, count in rows:
        counts.setdefault(str(account), {})[str(status)] = int(count)
    return counts


async def fail_undelivered(conn: AsyncConnection, account_key: str, *, now: datetime) -> int:
    """The account is being removed: its undelivered leads fail (kept, never sent). How many."""
    result = await conn.execute(
        update(deliveries)
        .where(
            deliveries.c.account_key == account_key,
            deliveries.c.status.in_((QUEUED, RETRYING, SENDING)),
        )
        .values(
            status=FAILED,
            last_error="the amoCRM account was removed from the gateway",
            lease_owner=None,
            lease_until=None,
            updated_at=now,
        )
    )
    return int(result.rowcount)
