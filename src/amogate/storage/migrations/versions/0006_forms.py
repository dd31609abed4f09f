"""forms and form_submissions: public form endpoints

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-29 19:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "forms",
        sa.Column("id", sa.String(16), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("account_key", sa.String(64), nullable=False),
        sa.Column("id_hash", sa.String(64), nullable=False),
        sa.Column("id_hint", sa.String(16), nullable=False),
        sa.Column("origins", sa.JSON(), nullable=False),
        sa.Column("success_url", sa.Text(), nullable=True),
        sa.Column("pipeline_id", sa.BigInteger(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("field_map", sa.JSON(), nullable=False),
        sa.Column("honeypot", sa.String(64), nullable=False),
        sa.Column("captcha", sa.String(16), nullable=True),
        sa.Column("captcha_secret", sa.Text(), nullable=True),
        sa.Column("rate_per_minute", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_forms"),
        sa.UniqueConstraint("name", name="uq_forms_name"),
        sa.UniqueConstraint("id_hash", name="uq_forms_id_hash"),
    )
    op.create_table(
        "form_submissions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("form_id", sa.String(16), nullable=False),
        sa.Column("delivery_id", sa.String(32), nullable=False),
        sa.Column("tranid", sa.String(128), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["form_id"], ["forms.id"], name="fk_form_submissions_form_id_forms", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_form_submissions"),
        sa.UniqueConstraint("form_id", "tranid", name="uq_form_submissions_tranid"),
    )
    op.create_index(
        "ix_form_submissions_form_created", "form_submissions", ["form_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_form_submissions_form_created", table_name="form_submissions")
    op.drop_table("form_submissions")
    op.drop_table("forms")
