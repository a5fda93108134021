"""training resources per product category and language, from the catalog; contracts found by
when they were sold (the "getting started" letter)

Revision ID: 0028
Revises: 0027
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "training_resources",
        sa.Column("category", sa.String(32), primary_key=True),
        sa.Column("position", sa.Integer(), primary_key=True),
        sa.Column("locale", sa.String(16), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
    )
    op.create_index("ix_contracts_sold_at", "contracts", ["sold_at"])


def downgrade() -> None:
    op.drop_index("ix_contracts_sold_at", "contracts")
    op.drop_table("training_resources")
