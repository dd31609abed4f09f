"""contact matching: deliveries.contact_matched, the contact_links table; forms.mode

Revision ID: 0007
Revises: 0008
Create Date: 2026-11-29 20:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("contact_matched", sa.Boolean(), nullable=True))
    op.create_table(
        "contact_links",
        sa.Column("account_key", sa.String(length=64), nullable=False),
        sa.Column("contact_key", sa.String(length=320), nullable=False),
        sa.Column("contact_id", sa.BigInteger(), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("account_key", "contact_key", name=op.f("pk_contact_links")),
    )
    op.create_index(
        "ix_contact_links_contact", "contact_links", ["account_key", "contact_id"], unique=False
    )
    with op.batch_alter_table("forms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mode", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("forms", schema=None) as batch_op:
        batch_op.drop_column("mode")
    op.drop_index("ix_contact_links_contact", table_name="contact_links")
    op.drop_table("contact_links")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("contact_matched")
