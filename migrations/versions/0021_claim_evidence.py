"""a claim's evidence: photos, receipts and reports, the files kept in the evidence store

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "claim_evidence",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("claim_id", sa.String(40), sa.ForeignKey("claims.id"), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("storage_key", sa.String(200), nullable=False, unique=True),
        sa.Column("filename", sa.String(200), nullable=True),
        sa.Column("uploaded_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_claim_evidence_claim_id", "claim_evidence", ["claim_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_claim_evidence_claim_id", "claim_evidence")
    op.drop_table("claim_evidence")
