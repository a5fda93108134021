"""the ledger's claim costs carry the claim and the servicer

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ledger_entries", sa.Column("claim_id", sa.String(40), nullable=True))
    op.add_column("ledger_entries", sa.Column("servicer_id", sa.String(40), nullable=True))
    op.create_index("ix_ledger_entries_claim_id", "ledger_entries", ["claim_id"])


def downgrade() -> None:
    op.drop_index("ix_ledger_entries_claim_id", "ledger_entries")
    op.drop_column("ledger_entries", "servicer_id")
    op.drop_column("ledger_entries", "claim_id")
