"""stored Idempotency-Key answers keep their Content-Language and are sealed from now on

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Answers stored before were not sealed: forgotten (they live 24 hours at most).
    op.execute("DELETE FROM idempotent_requests")
    op.add_column("idempotent_requests", sa.Column("content_language", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("idempotent_requests", "content_language")
