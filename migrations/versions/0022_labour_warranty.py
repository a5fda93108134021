"""a product's manufacturer's warranty on labour, when it differs from the one on parts

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("products", sa.Column("warranty_labour_months", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("products", "warranty_labour_months")
