"""lead warnings on deliveries; the last tokens.json import on the account

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("warnings", sa.JSON(), nullable=True))
    with op.batch_alter_table("amo_accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("tokens_file_imported_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("tokens_file_fingerprint", sa.String(length=64), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("amo_accounts", schema=None) as batch_op:
        batch_op.drop_column("tokens_file_fingerprint")
        batch_op.drop_column("tokens_file_imported_at")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("warnings")
