"""several amoCRM accounts: each account's settings on its row, keys and OAuth states bound to one

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 20:00:00

A database of the single-account gateway keeps working unchanged: its token row is already
`default`, its queued deliveries already carry `account_key = 'default'`, and its issued keys
get `account_key = 'default'` here. `default` keeps taking its settings from `.env`; the new
columns describe accounts added with `amogate accounts add`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("amo_accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("added_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("amo_domain", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("base_url", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("client_id", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("client_secret", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("long_lived_token", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("rate_limit", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("contact_dedup", sa.String(length=32), nullable=True))
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("account_key", sa.String(length=64), nullable=False, server_default="default")
        )
    with op.batch_alter_table("oauth_states", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("account_key", sa.String(length=64), nullable=False, server_default="default")
        )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deliveries_account_due", ["account_key", "status", "next_attempt_at"]
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_account_due")
    with op.batch_alter_table("oauth_states", schema=None) as batch_op:
        batch_op.drop_column("account_key")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("account_key")
    with op.batch_alter_table("amo_accounts", schema=None) as batch_op:
        for column in (
            "contact_dedup",
            "rate_limit",
            "long_lived_token",
            "client_secret",
            "client_id",
            "base_url",
            "amo_domain",
            "added_at",
        ):
            batch_op.drop_column(column)
