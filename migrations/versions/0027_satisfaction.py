"""satisfaction requests: a rating and a comment after a service order closed or a service was
redeemed, kept per servicer and per plan

Revision ID: 0027
Revises: 0026
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "satisfaction_requests",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("subject_kind", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.String(40), nullable=False),
        sa.Column("customer_id", sa.String(40), sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("contract_id", sa.String(40), sa.ForeignKey("contracts.id"), nullable=False),
        sa.Column("plan_code", sa.String(64), nullable=False),
        sa.Column("servicer_id", sa.String(40), sa.ForeignKey("servicers.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("subject_kind", "subject_id", name=op.f("uq_satisfaction_requests_subject_kind")),
    )
    op.create_index("ix_satisfaction_requests_answered_at", "satisfaction_requests", ["answered_at"])


def downgrade() -> None:
    op.drop_table("satisfaction_requests")
