"""claims wait for a reviewer: who filed and who decided, why a claim went to review, its fraud
flags, and since when it waits (the review queue's order)

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("claims", sa.Column("filed_by", sa.String(64), nullable=True))
    op.add_column("claims", sa.Column("review_reasons", sa.Text(), nullable=False, server_default="[]"))
    op.add_column("claims", sa.Column("flags", sa.Text(), nullable=False, server_default="[]"))
    op.add_column("claims", sa.Column("review_since", sa.DateTime(timezone=True), nullable=True))
    op.add_column("claims", sa.Column("decided_by", sa.String(64), nullable=True))
    op.add_column("claims", sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True))
    op.alter_column("claims", "reason", type_=sa.String(40))
    op.create_index("ix_claims_status_queue", "claims", ["status", "review_since", "id"])
    op.create_index("ix_claims_created_at", "claims", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_claims_created_at", "claims")
    op.drop_index("ix_claims_status_queue", "claims")
    op.alter_column("claims", "reason", type_=sa.String(32))
    for column in ("decided_at", "decided_by", "review_since", "flags", "review_reasons", "filed_by"):
        op.drop_column("claims", column)
