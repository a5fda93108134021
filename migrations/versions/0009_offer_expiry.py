"""contracts remember when their offer expires: unpaid by then, they are abandoned

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("contracts", sa.Column("offer_expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_contracts_unpaid_offer_expiry",
        "contracts",
        ["offer_expires_at"],
        postgresql_where=sa.text("status = 'pending_payment'"),
    )


def downgrade() -> None:
    op.drop_index("ix_contracts_unpaid_offer_expiry", table_name="contracts")
    op.drop_column("contracts", "offer_expires_at")
