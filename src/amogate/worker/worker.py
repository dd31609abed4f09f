"""The delivery worker loop, inside `amogate serve` or alone as `amogate worker`.

It runs `Deliverer.run_once()` in the loop shared with the relay worker
(`deliveries/polling.py`): while there is due work, and otherwise until the intake of the same
process wakes it or `poll_seconds` pass (leads stored by other processes, retries coming due).
Several workers, in one process or many sharing a PostgreSQL database, never deliver the same
lead twice: each batch is leased in the database.
"""

from __future__ import annotations

from datetime import timedelta

from amogate.connection.service import AmoConnection
from amogate.contacts.matching import parse_dedup
from amogate.contacts.resolve import CLAIM_SECONDS, ContactResolver
from amogate.deliveries.polling import POLL_SECONDS, PollingLoop
from amogate.deliveries.signals import DeliverySignals
from amogate.leads.fields import FieldLists
from amogate.settings import Settings
from amogate.storage.db import Database
from amogate.worker.deliver import Deliverer
from amogate.worker.retention import RetentionPurge
from amogate.worker.retry import RetryPolicy


def policy_from(settings: Settings) -> RetryPolicy:
    base = settings.delivery_retry_base_seconds
    return RetryPolicy(
        base_delay=base,
        max_delay=max(base, settings.delivery_retry_max_seconds),
        max_age=timedelta(hours=settings.delivery_max_age_hours),
    )


def purge_from(settings: Settings, database: Database) -> RetentionPurge:
    return RetentionPurge(
        database,
        retention=timedelta(days=settings.data_retention_days),
        interval_s=settings.purge_interval_seconds,
    )


def deliverer_from(
    settings: Settings,
    database: Database,
    amo: AmoConnection,
    fields: FieldLists,
    signals: DeliverySignals | None,
) -> Deliverer:
    deliverer = Deliverer(
        database,
        amo,
        fields,
        policy=policy_from(settings),
        lease=timedelta(seconds=settings.delivery_lease_seconds),
        signals=signals,
    )
    deliverer.contacts = ContactResolver(
        database,
        settings.phone_default_region,
        parse_dedup(settings.contact_dedup),
        owner=deliverer.owner,
        # A claim on a new person's contact lasts as long as the lease on the lead creating it:
        # when a dead worker's leads are taken over, so are its claims.
        claim_seconds=min(CLAIM_SECONDS, settings.delivery_lease_seconds),
    )
    return deliverer


class DeliveryWorker(PollingLoop):
    def __init__(
        self,
        deliverer: Deliverer,
        signals: DeliverySignals,
        *,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        super().__init__(
            "worker",
            deliverer.run_once,
            signals,
            owner=deliverer.owner,
            close=deliverer.close,
            poll_seconds=poll_seconds,
        )
        self.deliverer = deliverer
