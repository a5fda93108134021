"""proactive outreach: the notices sent once per renewal, term end or lead, and the leads for
products bought without a plan

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outreach",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.String(length=40), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("kind", "subject_id", "due_at"),
    )
    op.create_table(
        "leads",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("product_id", sa.String(length=40), sa.ForeignKey("products.id"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("contract_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_leads_product_id", "leads", ["product_id"])
    # The sweep finds each contract's last paid day by its periods' ends.
    op.create_index("ix_coverage_periods_ends_at", "coverage_periods", ["ends_at"])


def downgrade() -> None:
    op.drop_index("ix_coverage_periods_ends_at", "coverage_periods")
    op.drop_table("leads")
    op.drop_table("outreach")
