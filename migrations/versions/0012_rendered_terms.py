"""a plan version's rule clauses, rendered in every language and currency when it is published

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # '{}' for versions published before: their clauses are rendered when read.
    op.add_column("plans", sa.Column("rendered_terms", sa.Text(), nullable=False, server_default="{}"))


def downgrade() -> None:
    op.drop_column("plans", "rendered_terms")
