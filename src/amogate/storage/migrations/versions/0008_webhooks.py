"""the webhook relay: inbound secrets, subscribers, inbound posts, events, their deliveries

Revision ID: 0008
Revises: 0006
Create Date: 2026-11-29 20:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "relay_accounts",
        sa.Column("account_key", sa.String(length=64), nullable=False),
        sa.Column("inbound_secret", sa.String(length=64), nullable=False),
        sa.Column("registered_events", sa.JSON(), nullable=True),
        sa.Column("registered_at", TIME, nullable=True),
        sa.Column("amo_webhook_id", sa.BigInteger(), nullable=True),
        sa.Column("amo_disabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("reenabled_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("checked_at", TIME, nullable=True),
        sa.Column("check_error", sa.Text(), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("account_key", name=op.f("pk_relay_accounts")),
    )
    op.create_table(
        "relay_subscribers",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_key", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_relay_subscribers")),
    )
    op.create_index(op.f("ix_relay_subscribers_account_key"), "relay_subscribers", ["account_key"])
    op.create_table(
        "relay_posts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_key", sa.String(length=64), nullable=False),
        sa.Column("body_hash", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("received_at", TIME, nullable=False),
        sa.Column("erased_at", TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_relay_posts")),
        sa.UniqueConstraint("account_key", "body_hash", name="uq_relay_posts_account_body"),
    )
    op.create_index("ix_relay_posts_erasable", "relay_posts", ["erased_at", "received_at"])
    op.create_table(
        "relay_events",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_key", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("entity", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", TIME, nullable=False),
        sa.Column("received_at", TIME, nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("post_id", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_relay_events")),
    )
    op.create_index("ix_relay_events_received_at", "relay_events", ["received_at"])
    op.create_table(
        "relay_deliveries",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=32), nullable=False),
        sa.Column("subscriber_id", sa.String(length=32), nullable=False),
        sa.Column("account_key", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("next_at", TIME, nullable=False),
        sa.Column("give_up_at", TIME, nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", TIME, nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["relay_events.id"],
            name=op.f("fk_relay_deliveries_event_id_relay_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["relay_subscribers.id"],
            name=op.f("fk_relay_deliveries_subscriber_id_relay_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_relay_deliveries")),
        sa.UniqueConstraint(
            "event_id", "subscriber_id", name="uq_relay_deliveries_event_subscriber"
        ),
    )
    op.create_index(
        op.f("ix_relay_deliveries_subscriber_id"), "relay_deliveries", ["subscriber_id"]
    )
    op.create_index("ix_relay_deliveries_due", "relay_deliveries", ["status", "next_at"])


def downgrade() -> None:
    op.drop_table("relay_deliveries")
    op.drop_table("relay_events")
    op.drop_table("relay_posts")
    op.drop_table("relay_subscribers")
    op.drop_table("relay_accounts")
