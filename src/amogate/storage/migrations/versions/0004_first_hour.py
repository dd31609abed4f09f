"""deliveries.received: the lead request as the client sent it

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 17:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Leads accepted before this revision keep only their normalised form (NULL here).
    op.add_column("deliveries", sa.Column("received", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("deliveries", "received")
