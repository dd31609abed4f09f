"""security: admin session state, browser-bound OAuth states, personal-data erasure

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "admin_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("session_secret", sa.String(length=128), nullable=False),
        sa.Column("session_generation", sa.Integer(), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_state")),
    )
    with op.batch_alter_table("oauth_states", schema=None) as batch_op:
        batch_op.add_column(sa.Column("browser_digest", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("replace_account", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_deliveries_erasable", ["erased_at", "delivered_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_erasable")
        batch_op.drop_column("erased_at")
    with op.batch_alter_table("oauth_states", schema=None) as batch_op:
        batch_op.drop_column("replace_account")
        batch_op.drop_column("browser_digest")
    op.drop_table("admin_state")
