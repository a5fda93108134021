"""sessions of the pages: a support agent signed in to the console, a customer in the portal

Revision ID: 0024
Revises: 0023
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "page_sessions",
        sa.Column("id", sa.String(64), primary_key=True),  # SHA-256 of the cookie's value
        sa.Column("kind", sa.String(16), nullable=False),  # console | portal
        sa.Column("key_id", sa.String(40), sa.ForeignKey("api_keys.id"), nullable=True),
        sa.Column("agent", sa.String(80), nullable=True),
        sa.Column("customer_id", sa.String(40), sa.ForeignKey("customers.id"), nullable=True),
        sa.Column("locale", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_page_sessions_expires_at", "page_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_table("page_sessions")
