"""a lease on each call to Stripe that must not be made twice at once (a contract's checkout, its
cancellation): a concurrent request waits for the holder or is refused, and a holder that died is
taken over once its lease has passed, with the refunds it had planned

Revision ID: 0033
Revises: 0032
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gateway_leases",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("holder", sa.String(32), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("planned", sa.LargeBinary(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("gateway_leases")
